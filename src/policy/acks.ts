import { PROTOCOL_V2 } from "../runtime/protocol-v2";
import { REPLAYED_ERROR } from "../runtime/protocol";
import { clip, errorText, jsonObject, notARuntime, type Outcome, type Unavailable } from "./outcome";

/*
 * What a protocol 2 dispatch's answer means for each of its runs (docs/runtime-protocol.md,
 * "Version 2"). The runtime acknowledges every run at once; only a 200 with `bg-protocol: 2`
 * and one well-formed ack per run is an answer. Anything else leaves every run of the
 * dispatch unavailable, as silence before an acknowledgement is the runtime's, not a piece's.
 */

/** The dispatch's answer: an outcome per runId, or one outcome for all (with a retry hint). */
export type DispatchVerdict = { kind: "acked"; outcomes: Map<string, Outcome> } | { kind: "unavailable"; outcome: Unavailable; retryAfterSeconds: number | null };

/** The longest wait a runtime's Retry-After may ask for before a run is tried again. */
export const MAX_RETRY_AFTER_SECONDS = 300;

/** Classifies a dispatch's answer for the runs it carried (`runIds`). */
export function classifyDispatch(status: number, body: string, version: string | null, retryAfter: string | null, runIds: readonly string[]): DispatchVerdict {
	const fields = jsonObject(body);
	const error = errorText(fields);
	const down = (reason: string): DispatchVerdict => ({ kind: "unavailable", outcome: { kind: "unavailable", reason }, retryAfterSeconds: retrySeconds(retryAfter) });
	if (status === 429 || status >= 500 || status < 200 || (status >= 300 && status < 400)) return down(`runtime answered HTTP ${status}${error ? `: ${error}` : ""}`);
	if (version === "1") return down("the runtime answered a protocol 2 dispatch with protocol 1: it speaks only version 1 (set RUNTIME_PROTOCOL to 1)");
	if (version !== PROTOCOL_V2) {
		const outcome = notARuntime(status, version === null ? "without the bg-protocol header" : `with bg-protocol: ${clip(version)}`);
		return { kind: "unavailable", outcome, retryAfterSeconds: null };
	}
	// The whole dispatch refused as a replay: every run of it is, and is probed as such.
	if (status === 401 && error === REPLAYED_ERROR) return { kind: "acked", outcomes: new Map(runIds.map((runId) => [runId, { kind: "replayed" }])) };
	if (status === 401 || status === 407) return down(`runtime refused the scheduler: HTTP ${status}${error ? `: ${error}` : ""}`);
	if (status >= 300) return down(`runtime refused the dispatch: HTTP ${status}${error ? `: ${error}` : ""}`);
	const acks = Array.isArray(fields?.runs) ? (fields.runs as unknown[]) : null;
	if (!acks) return { kind: "unavailable", outcome: notARuntime(status, "without a runs list in its body"), retryAfterSeconds: null };
	const outcomes = new Map<string, Outcome>();
	for (const ack of acks) {
		const parsed = ackOutcome(ack);
		if (parsed && runIds.includes(parsed.runId)) outcomes.set(parsed.runId, parsed.outcome);
	}
	// A run the answer does not acknowledge was not taken: the runtime's omission, not the piece's.
	for (const runId of runIds) if (!outcomes.has(runId)) outcomes.set(runId, { kind: "unavailable", reason: "the runtime's answer did not acknowledge this run" });
	return { kind: "acked", outcomes };
}

/** One ack's outcome, or null if it is not a well-formed ack. */
function ackOutcome(value: unknown): { runId: string; outcome: Outcome } | null {
	const ack = value as { runId?: unknown; status?: unknown; error?: unknown; notFound?: unknown; busy?: { runId?: unknown; since?: unknown } } | null;
	if (!ack || typeof ack !== "object" || typeof ack.runId !== "string") return null;
	const error = typeof ack.error === "string" && ack.error.trim() ? clip(ack.error.trim()) : null;
	switch (ack.status) {
		case "accepted":
			return { runId: ack.runId, outcome: { kind: "accepted" } };
		case "busy":
			if (!ack.busy || typeof ack.busy.runId !== "string") return null;
			return { runId: ack.runId, outcome: { kind: "busy", runningRunId: clip(ack.busy.runId), since: Number.isFinite(ack.busy.since) ? Number(ack.busy.since) : 0 } };
		case "failed":
			if (!error) return null;
			// `notFound: true`: no such piece or no bgUpdater, as protocol 1's 404.
			return { runId: ack.runId, outcome: ack.notFound === true ? { kind: "failed", error, notFound: true } : { kind: "failed", error } };
		case "refused":
			if (error === REPLAYED_ERROR) return { runId: ack.runId, outcome: { kind: "replayed" } };
			return { runId: ack.runId, outcome: { kind: "unavailable", reason: `runtime refused the run${error ? `: ${error}` : ""}` } };
		default:
			return null;
	}
}

/** A Retry-After in seconds (delta form), capped; null when absent or not a number. */
export function retrySeconds(value: string | null): number | null {
	if (value === null || !/^\d{1,9}$/.test(value.trim())) return null;
	return Math.min(Number(value.trim()), MAX_RETRY_AFTER_SECONDS);
}
