import type { PieceEntry, PieceSummary } from "../registry/entry";
import { fnv1a } from "../util/hash";
import type { RunOutcome } from "./outcome";

/** Each enabled piece runs once per minute, the cron's finest granularity. */
export const PERIOD_MS = 60_000;

/** An hour: the window of the last-hour figures (`/api/stats`). */
export const HOUR_MS = 60 * PERIOD_MS;

/** The third consecutive failure disables a piece (the replaced service's policy). */
export const MAX_CONSECUTIVE_FAILURES = 3;

/**
 * How long a piece the runtime found missing (no such piece, no bgUpdater) stays disabled
 * against re-registration. Such a piece is disabled at its first not-found run (no retry can
 * mend it); a registration may re-enable it once the hold is over, and its next not-found
 * run starts the hold again. So a registration loop on one junk piece costs at most one run
 * (and two KV writes) an hour, against 60 an hour for a piece that runs; a registration within
 * the hold writes nothing (src/api/registration.ts answers 409 with Retry-After). An operator's
 * enable is not held.
 */
export const NOT_FOUND_HOLD_MS = 60 * PERIOD_MS;

/**
 * The earliest tick time taken: 10^11 ms is March 1973. Cloudflare's scheduledTime is always
 * milliseconds; a smaller one is a local tick fired with `time=` in seconds (which would
 * otherwise run as a date in 1970 and leave every piece's next run decades early).
 */
export const EARLIEST_TICK_MS = 1e11;

/** Why a tick's scheduledTime cannot be taken, or null. */
export function tickTimeProblem(tickTime: number): string | null {
	if (!Number.isFinite(tickTime)) return "scheduledTime is not a time";
	if (tickTime < EARLIEST_TICK_MS) return `scheduledTime ${tickTime} is before 1973: a time in seconds, not milliseconds? (multiply it by 1000)`;
	return null;
}

/** Whether a tick with this scheduledTime should dispatch the piece. */
export function isDue(piece: Pick<PieceSummary, "disabledAt" | "nextRunAt">, tickTime: number): boolean {
	return piece.disabledAt === 0 && piece.nextRunAt <= tickTime;
}

/**
 * The time slot a run belongs to: a tick's scheduledTime, or, for a run started outside a
 * tick (registration, run-now), the start of the current minute, so that the next due time
 * falls on the next tick rather than between two.
 */
export function slotOf(now: number): number {
	return now - (now % PERIOD_MS);
}

/**
 * A failed run's wait before the next: 60 s × (n + 1) after the n-th consecutive failure,
 * counted from the dispatching tick's scheduledTime so the cadence stays on the tick grid.
 */
export function nextRunAfterFailure(scheduledTime: number, failures: number): number {
	return scheduledTime + PERIOD_MS * (failures + 1);
}

/**
 * Default spread of a tick's runs: the whole minute, phases 0 to 59 s. A piece's phase never
 * changes, so its runs stay 60 s apart and never overlap one another however late in the
 * minute they fall; a spread over all 60 s is the flattest load the runtime can see.
 */
export const DEFAULT_SPREAD_SECONDS = 60;

/** The spread from SPREAD_SECONDS: 0 (no spreading) to 60, else the default. */
export function spreadSeconds(value: string | undefined): number {
	const seconds = Number(value);
	return value !== undefined && value !== "" && Number.isInteger(seconds) && seconds >= 0 && seconds <= 60 ? seconds : DEFAULT_SPREAD_SECONDS;
}

/**
 * A piece's stable phase within the minute, in whole seconds below `spread`: its tick's
 * message is delivered that long after the tick, so the runtime sees a steady rate instead of
 * a burst at :00, and each piece keeps a steady 60 s period. FNV-1a over the piece's key
 * spreads pieces evenly and never changes for a piece.
 */
export function phaseSeconds(piece: { space: string; pieceId: string }, spread: number): number {
	if (spread <= 0) return 0;
	return fnv1a(`${piece.space}/${piece.pieceId}`) % spread;
}

/** What a run changed, for logs. */
export type RunEvent = "success" | "failure" | "disabled" | "unavailable" | "skipped";

/** The context of one handled run. */
export interface RunContext {
	scheduledTime: number;
	now: number;
	runId: string;
	durationMs: number;
}

/**
 * The entry after a run: the replaced service's policy (`lastRun` stamped on every attempt the
 * runtime answered, success or failure), except that a runtime outage changes nothing but the
 * status: that run did not happen. Pure: the caller stores the result.
 */
export function applyOutcome(entry: PieceEntry, outcome: RunOutcome, run: RunContext): { entry: PieceEntry; event: RunEvent } {
	const base = { ...entry, lastRunId: run.runId, lastDurationMs: run.durationMs };
	switch (outcome.kind) {
		case "ok":
			return {
				event: "success",
				entry: { ...base, status: "Success", lastRun: run.now, lastSuccessAt: run.now, failures: 0, unavailableSince: 0, nextRunAt: run.scheduledTime + PERIOD_MS },
			};
		case "failed": {
			const failures = entry.failures + 1;
			const failed = { ...base, failures, lastRun: run.now, lastError: outcome.error, unavailableSince: 0, lastFailureAt: run.now };
			// Nothing to run: no further run can succeed, so the first one disables it.
			if (outcome.notFound) {
				return { event: "disabled", entry: { ...failed, disabledAt: run.now, disabledBy: "not-found", status: `Disabled: ${NOT_FOUND_STATUS}: ${outcome.error}` } };
			}
			if (failures >= MAX_CONSECUTIVE_FAILURES) {
				return { event: "disabled", entry: { ...failed, disabledAt: run.now, disabledBy: "failures", status: `Disabled: ${outcome.error}` } };
			}
			return { event: "failure", entry: { ...failed, status: outcome.error, nextRunAt: nextRunAfterFailure(run.scheduledTime, failures) } };
		}
		case "unavailable": {
			// The run did not happen: keep lastRunId so a retry of this very message still runs.
			const since = entry.unavailableSince || run.now;
			return {
				event: "unavailable",
				entry: { ...entry, unavailableSince: since, status: `Runtime unavailable since ${new Date(since).toISOString()}: ${outcome.reason}` },
			};
		}
	}
}

/** What a not-found piece's status says before the runtime's own error. */
export const NOT_FOUND_STATUS = "the runtime found no such piece or no bgUpdater";

/**
 * Until when a registration may not re-enable a piece (ms), or null if it may: a piece the
 * runtime found missing is held for NOT_FOUND_HOLD_MS from when it was disabled.
 */
export function heldUntil(existing: Pick<PieceEntry, "disabledAt" | "disabledBy">, now: number): number | null {
	if (existing.disabledBy !== "not-found" || !existing.disabledAt) return null;
	const until = existing.disabledAt + NOT_FOUND_HOLD_MS;
	return now < until ? until : null;
}

/** A piece's entry after a (re-)registration: new pieces start, known ones are re-enabled. */
export function registered(existing: PieceEntry | null, fields: Pick<PieceEntry, "space" | "pieceId" | "integration">, now: number): PieceEntry {
	if (!existing) {
		return {
			...fields,
			createdAt: now,
			updatedAt: now,
			disabledAt: 0,
			lastRun: 0,
			lastSuccessAt: 0,
			status: "Initializing",
			failures: 0,
			nextRunAt: 0,
			lastRunId: "",
			lastError: "",
			lastDurationMs: 0,
			unavailableSince: 0,
		};
	}
	const wasDisabled = existing.disabledAt !== 0;
	const { disabledBy: _, ...kept } = existing;
	return {
		...kept,
		integration: fields.integration,
		updatedAt: now,
		disabledAt: 0,
		status: "Re-initializing",
		// A registration (often an OAuth reconnect: the user's fix) forgives past failures; a
		// disabled piece runs at the next tick, an enabled one keeps its cadence.
		failures: 0,
		nextRunAt: wasDisabled ? 0 : existing.nextRunAt,
	};
}

/** A piece's entry after an operator enables or disables it. */
export function withEnabled(entry: PieceEntry, enabled: boolean, now: number): PieceEntry {
	if (!enabled) return { ...entry, updatedAt: now, disabledAt: entry.disabledAt || now, disabledBy: "operator", status: "Disabled via UI" };
	if (entry.disabledAt === 0) return entry;
	const { disabledBy: _, ...kept } = entry;
	return { ...kept, updatedAt: now, disabledAt: 0, failures: 0, nextRunAt: 0, status: "Initializing..." };
}
