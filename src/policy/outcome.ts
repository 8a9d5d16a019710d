import { REPLAYED_ERROR } from "../runtime/protocol";
import { clipText } from "../util/text";

/**
 * What a run's answer means for the piece (docs/runtime-protocol.md, "Outcome classes").
 * - `ok`: the bgUpdater ran to completion.
 * - `failed`: the piece itself failed (raised, has no bgUpdater, outlasted the timeout);
 *   counts toward disabling it.
 * - `unavailable`: the runtime could not run anything (down, overloaded, refusing us);
 *   says nothing about the piece, so it counts nothing and disables nothing.
 * - `duplicate`: the runtime already received this very run (a duplicate delivery); the
 *   copy is dropped and changes nothing.
 */
export type Outcome =
	| { kind: "ok" }
	| { kind: "failed"; error: string }
	| { kind: "unavailable"; reason: string }
	| { kind: "duplicate" };

/** The outcome of a run that was not a duplicate: what a piece's entry records. */
export type RunOutcome = Exclude<Outcome, { kind: "duplicate" }>;

/** Longest error text kept from a runtime's answer; the rest is cut. */
export const MAX_ERROR_LENGTH = 1000;

/**
 * Classifies the runtime's HTTP answer (DESIGN §3): 2xx is success; 429, 5xx and anything
 * that is not an answer (1xx, 3xx) mean the runtime is unavailable. 401 and 407 mean the
 * runtime (or a proxy) refused *us* — a misconfigured identity — so they are unavailable too:
 * a key rotation must not disable every piece. Any other 4xx is the piece's failure when it
 * is a runtime's answer: it carries `bg-protocol: 1` (`fromRuntime`) or a JSON `{error}`
 * body. A bare 404 page from whatever a wrong PIECE_RUNTIME_URL reaches is neither, and
 * counts as unavailable rather than against every piece.
 */
export function classifyResponse(status: number, body: string, fromRuntime: boolean): Outcome {
	if (status >= 200 && status < 300) return { kind: "ok" };
	const error = errorText(body);
	// A runtime's replay refusal: it has this run already, so our copy is a duplicate.
	if (status === 401 && fromRuntime && error === REPLAYED_ERROR) return { kind: "duplicate" };
	const refusedUs = status === 401 || status === 407;
	if (status < 400 || status >= 500 || status === 429 || refusedUs) {
		return { kind: "unavailable", reason: `runtime answered HTTP ${status}${error ? `: ${error}` : ""}` };
	}
	if (!fromRuntime && error === null) {
		return { kind: "unavailable", reason: `HTTP ${status} without a JSON {error} body or the bg-protocol header: not a piece runtime's answer (check PIECE_RUNTIME_URL)` };
	}
	return { kind: "failed", error: error ?? (status === 404 ? "piece not found or it has no bgUpdater" : `runtime answered HTTP ${status}`) };
}

/** The outcome of a run that outlasted the timeout: the piece's failure. */
export function timedOut(timeoutMs: number): RunOutcome {
	return { kind: "failed", error: `timed out after ${timeoutMs} ms` };
}

/** The outcome of a run that never reached the runtime (connection refused, DNS, …). */
export function unreachable(reason: string): RunOutcome {
	return { kind: "unavailable", reason: `runtime unreachable: ${clip(reason)}` };
}

/** `{error}` from a JSON body, if the body is one. */
function errorText(body: string): string | null {
	try {
		const parsed: unknown = JSON.parse(body);
		if (parsed && typeof parsed === "object" && "error" in parsed) {
			const { error } = parsed as { error: unknown };
			if (typeof error === "string" && error.trim()) return clip(error.trim());
		}
	} catch {
		// Not JSON: the status alone speaks.
	}
	return null;
}

function clip(text: string): string {
	return clipText(text, MAX_ERROR_LENGTH);
}
