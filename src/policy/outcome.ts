import { PROTOCOL_VERSION, REPLAYED_ERROR } from "../runtime/protocol";
import { clipText } from "../util/text";

/**
 * What a run's answer means for the piece (docs/runtime-protocol.md, "Outcome classes").
 * - `ok`: the bgUpdater ran to completion.
 * - `failed`: the piece itself failed (raised, has no bgUpdater, outlasted its time on a
 *   runtime that is alive); counts toward disabling it. `notFound`: the runtime says there is
 *   no such piece or no bgUpdater (protocol 1's 404, protocol 2's `notFound`), which no retry
 *   mends: it disables the piece at once.
 * - `unavailable`: the runtime could not run anything (down, overloaded, refusing us, silent,
 *   or not a piece runtime at all); says nothing about the piece, so it counts nothing and
 *   disables nothing.
 * - `replayed`: the runtime refused the run as one it has already seen. A duplicate delivery
 *   produces it; so does a runtime whose replay store is broken: a liveness probe, whose
 *   runId is new, tells the two apart (`afterReplay`).
 * - `busy`: the runtime is still running this piece's previous run; this one is skipped
 *   (counts nothing) and the piece stays due.
 * - `accepted` (protocol 2): the runtime took the run and will report its outcome later.
 * - `silent`: no complete answer within the run's timeout; a liveness probe decides whether
 *   that is the piece's failure or an outage (`afterSilence`).
 */
export type Outcome =
	| { kind: "ok" }
	| { kind: "failed"; error: string; notFound?: true }
	| { kind: "unavailable"; reason: string }
	| { kind: "replayed" }
	| { kind: "busy"; runningRunId: string; since: number }
	| { kind: "accepted" }
	| { kind: "silent"; timeoutMs: number };

/** An outcome an entry records. */
export type RunOutcome = Extract<Outcome, { kind: "ok" | "failed" | "unavailable" }>;

/** The outcome of a run the runtime could not take. */
export type Unavailable = Extract<Outcome, { kind: "unavailable" }>;

/**
 * A runtime's answer once silence and replay refusals are resolved by a probe: `duplicate`
 * is a replay refusal from a runtime that took a fresh probe, so it really has the run.
 */
export type Answer = Exclude<Outcome, { kind: "silent" | "replayed" | "accepted" }> | { kind: "duplicate" };

/** Longest error text kept from a runtime's answer; the rest is cut. */
export const MAX_ERROR_LENGTH = 1000;

/** The reason given for an answer that does not follow the protocol. */
export function notARuntime(status: number, what: string): Unavailable {
	return { kind: "unavailable", reason: `the runtime URL answered HTTP ${status} ${what}: that is not a piece runtime's answer (check PIECE_RUNTIME_URL or the RUNTIME binding)` };
}

/**
 * Classifies the runtime's HTTP answer. Only the protocol's answers count for or against a
 * piece: an answer that carries `bg-protocol: 1` and a JSON object body, 2xx with
 * `"ok": true` (success) or a 4xx other than 401, 407 and 429 with a non-empty `error` (the
 * piece failed). Everything else means the runtime is unavailable: 429, 5xx, 1xx and 3xx; a
 * 401 or 407 (the runtime or a proxy refused *us*: a key rotation must not disable every
 * piece), except the runtime's own `replayed runId`; 409 with `busy` is the runtime still
 * running the piece's previous run; and any answer without the protocol
 * header or with a body that does not parse as the protocol says, which is what a health
 * page, a catch-all app or a web server's 404 answers when PIECE_RUNTIME_URL points at the
 * wrong thing.
 */
export function classifyResponse(status: number, body: string, version: string | null): Exclude<Outcome, { kind: "accepted" }> {
	const fields = jsonObject(body);
	const error = errorText(fields);
	if (status === 429 || status >= 500 || status < 200 || (status >= 300 && status < 400)) {
		return { kind: "unavailable", reason: `runtime answered HTTP ${status}${error ? `: ${error}` : ""}` };
	}
	if (version !== PROTOCOL_VERSION) return notARuntime(status, version === null ? "without the bg-protocol header" : `with bg-protocol: ${clip(version)}`);
	if (status === 401 && error === REPLAYED_ERROR) return { kind: "replayed" };
	if (status === 401 || status === 407) return { kind: "unavailable", reason: `runtime refused the scheduler: HTTP ${status}${error ? `: ${error}` : ""}` };
	if (!fields) return notARuntime(status, "with a body that is not a JSON object");
	const busy = busyRun(status, fields);
	if (busy) return busy;
	if (status < 300) return fields.ok === true ? { kind: "ok" } : notARuntime(status, 'without "ok": true in its body');
	if (!error) return notARuntime(status, 'without a non-empty "error" in its body');
	// 404 is the protocol's "no such piece, or no bgUpdater": the piece is not there to run.
	return status === 404 ? { kind: "failed", error, notFound: true } : { kind: "failed", error };
}

/** What a liveness probe found: the runtime answered as a runtime, or why not. */
export type ProbeResult = { alive: true } | { alive: false; reason: string };

/**
 * What a run that got no answer in time means, given a liveness probe sent after it. Silence
 * from a runtime that answers its probe is the piece's: it outlasted its time (the replaced
 * service's policy then disables it on the third in a row). Silence from a runtime that does
 * not answer its probe either says nothing about the piece: the runtime is unavailable.
 */
export function afterSilence(timeoutMs: number, probe: ProbeResult): RunOutcome {
	if (probe.alive) return { kind: "failed", error: `timed out after ${timeoutMs} ms` };
	return { kind: "unavailable", reason: `no answer within ${timeoutMs} ms, and no answer to a liveness probe: ${clip(probe.reason)}` };
}

/**
 * What a replay refusal means, given a liveness probe sent after it. A runtime that takes the
 * probe (a runId it cannot have seen) keeps an honest replay store: it has this run already,
 * from a duplicate delivery or a tick fired twice, and our copy is dropped. One that refuses
 * the probe too, or does not answer it, cannot run anything: an outage, counted nothing.
 */
export function afterReplay(probe: ProbeResult): Answer {
	if (probe.alive) return { kind: "duplicate" };
	// A probe refused as a replay is what REPLAY_REFUSED says already; any other fate is added.
	return { kind: "unavailable", reason: probe.reason === PROBE_REPLAYED ? REPLAY_REFUSED : `${REPLAY_REFUSED} (the probe: ${clip(probe.reason)})` };
}

/** A probe's fate when the runtime refused it as a replay. */
const PROBE_REPLAYED = "the probe was refused as a replay too";

/** The status reason of a runtime that refuses every run as a replay. */
export const REPLAY_REFUSED = "the runtime refused the run as already seen (replayed runId), and a fresh liveness probe too: its replay store is broken";

/** Resolves silence and replay refusals with a liveness probe, sent only for those two. */
export async function resolveAnswer(outcome: Exclude<Outcome, { kind: "accepted" }>, probe: () => Promise<ProbeResult>): Promise<Answer> {
	if (outcome.kind === "silent") return afterSilence(outcome.timeoutMs, await probe());
	if (outcome.kind === "replayed") return afterReplay(await probe());
	return outcome;
}

/**
 * Whether a probe's answer shows a live runtime: a protocol answer that is a success or the
 * piece's failure (a runtime that does not know probes takes one for an unknown piece).
 * Refusals, overload and anything that is not a runtime's answer show no live runtime.
 */
export function probeVerdict(answer: Outcome): ProbeResult {
	if (answer.kind === "ok" || answer.kind === "failed" || answer.kind === "accepted") return { alive: true };
	if (answer.kind === "unavailable") return { alive: false, reason: answer.reason };
	if (answer.kind === "silent") return { alive: false, reason: `the probe got no answer within ${answer.timeoutMs} ms` };
	if (answer.kind === "busy") return { alive: true };
	return { alive: false, reason: PROBE_REPLAYED };
}

/** The outcome of a run this scheduler could not send: a setting is missing or invalid. */
export function misconfigured(problem: string): Unavailable {
	return { kind: "unavailable", reason: `not sent: ${clip(problem)}` };
}

/** The outcome of a run that never reached the runtime (connection refused, DNS, …). */
export function unreachable(reason: string): Unavailable {
	return { kind: "unavailable", reason: `runtime unreachable: ${clip(reason)}` };
}

/** 409 `{"busy": {"runId", "since"}}`: the piece's previous run is still going. */
function busyRun(status: number, fields: Record<string, unknown>): Extract<Outcome, { kind: "busy" }> | null {
	const busy = fields.busy as { runId?: unknown; since?: unknown } | undefined;
	if (status !== 409 || !busy || typeof busy !== "object" || typeof busy.runId !== "string") return null;
	return { kind: "busy", runningRunId: clip(busy.runId), since: Number.isFinite(busy.since) ? Number(busy.since) : 0 };
}

/** The body as a JSON object, or null if it is not one. */
export function jsonObject(body: string): Record<string, unknown> | null {
	try {
		const parsed: unknown = JSON.parse(body);
		return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : null;
	} catch {
		return null;
	}
}

/** A non-empty `error` string, trimmed and clipped, or null. */
export function errorText(fields: Record<string, unknown> | null): string | null {
	const error = fields?.error;
	return typeof error === "string" && error.trim() ? clip(error.trim()) : null;
}

/** Clips a runtime's text to MAX_ERROR_LENGTH. */
export function clip(text: string): string {
	return clipText(text, MAX_ERROR_LENGTH);
}
