import type { RunEvent } from "./schedule";

/**
 * What the scheduler last saw of the runtime, for `GET /api/health` (docs/kv-schema.md,
 * `meta/runtime`). Written only when it changes (an outage begins or ends), and refreshed at
 * most every RUNTIME_HEALTH_REFRESH_MS while an outage lasts, so it costs no KV write per run.
 */
export interface RuntimeHealth {
	state: "ok" | "unavailable";
	/** Since when it has been in this state (ms). */
	since: number;
	/** Why it is unavailable ("" when ok). */
	reason: string;
	/** When a run last confirmed the state (ms). */
	checkedAt: number;
}

/** How often a lasting outage re-writes `meta/runtime`, which expires an hour after its last write. */
export const RUNTIME_HEALTH_REFRESH_MS = 10 * 60_000;

/** An outage's record expires this long after its last write, so one nobody ends (every piece deleted) clears itself. */
export const RUNTIME_HEALTH_TTL_SECONDS = 3600;

/**
 * The runtime health to write after a run, or null to write nothing. An unavailable run
 * starts an outage (or refreshes a lasting one); any answer the runtime gave as a runtime
 * (success, failure, skip) ends one. Pure: the consumer reads and writes.
 */
export function healthAfter(known: RuntimeHealth | null, event: RunEvent, reason: string, now: number): RuntimeHealth | null {
	if (event === "unavailable") {
		if (known?.state === "unavailable" && now - known.checkedAt < RUNTIME_HEALTH_REFRESH_MS) return null;
		return { state: "unavailable", since: known?.state === "unavailable" ? known.since : now, reason, checkedAt: now };
	}
	if (known?.state === "unavailable") return { state: "ok", since: now, reason: "", checkedAt: now };
	return null;
}
