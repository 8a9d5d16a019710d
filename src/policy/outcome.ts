import { clipText } from "../util/text";

/**
 * What a run's answer means for the piece (docs/runtime-protocol.md, "Outcome classes").
 * - `ok`: the bgUpdater ran to completion.
 * - `failed`: the piece itself failed (raised, has no bgUpdater, outlasted the timeout);
 *   counts toward disabling it.
 * - `unavailable`: the runtime could not run anything (down, overloaded, refusing us);
 *   says nothing about the piece, so it counts nothing and disables nothing.
 */
export type Outcome =
	| { kind: "ok" }
	| { kind: "failed"; error: string }
	| { kind: "unavailable"; reason: string };

/** Longest error text kept from a runtime's answer; the rest is cut. */
export const MAX_ERROR_LENGTH = 1000;

/**
 * Classifies the runtime's HTTP answer. `fromRuntime` says the answer carries the protocol's
 * version header: only a runtime's own answer may count against a piece, so a 404 or 200 from
 * whatever else a wrong PIECE_RUNTIME_URL reaches is `unavailable`. 401/403/407 mean the
 * runtime refused *us* (a misconfigured identity), not that the piece failed: a key rotation
 * must not disable every piece.
 */
export function classifyResponse(status: number, body: string, fromRuntime: boolean): Outcome {
	const refusedUs = status === 401 || status === 403 || status === 407;
	const overloaded = status === 429 || status >= 500;
	const notAnAnswer = status < 200 || (status >= 300 && status < 400);
	if (refusedUs || overloaded || notAnAnswer) {
		return { kind: "unavailable", reason: `runtime answered HTTP ${status}${detail(body)}` };
	}
	if (!fromRuntime) {
		return { kind: "unavailable", reason: `HTTP ${status} without the bg-protocol header: not a piece runtime's answer (check PIECE_RUNTIME_URL)` };
	}
	if (status < 300) return { kind: "ok" };
	const error = errorText(body) ?? (status === 404 ? "piece not found or it has no bgUpdater" : `runtime answered HTTP ${status}`);
	return { kind: "failed", error };
}

/** The outcome of a run that outlasted the timeout: the piece's failure. */
export function timedOut(timeoutMs: number): Outcome {
	return { kind: "failed", error: `timed out after ${timeoutMs} ms` };
}

/** The outcome of a run that never reached the runtime (connection refused, DNS, …). */
export function unreachable(reason: string): Outcome {
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

function detail(body: string): string {
	const error = errorText(body);
	return error ? `: ${error}` : "";
}

function clip(text: string): string {
	return clipText(text, MAX_ERROR_LENGTH);
}
