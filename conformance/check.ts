import { PROTOCOL_VERSION, REPLAYED_ERROR } from "../src/runtime/protocol";
import type { Exchange, Kit, Reply } from "./kit";

/** A check's result: passed (with what was seen) or failed (with why). */
export type Verdict = { pass: true; note: string } | { pass: false; why: string };

/** One conformance check: a stable name (printed, and matched by tests) and what it does. */
export interface Check {
	name: string;
	/** One sentence: what a conforming runtime does here. */
	what: string;
	run(kit: Kit): Promise<Verdict>;
}

export const pass = (note: string): Verdict => ({ pass: true, note });
export const fail = (why: string): Verdict => ({ pass: false, why });

/** An answer in a few words: its status and the class the scheduler would give it. */
export function describe(exchange: Exchange): string {
	if (!exchange.answered) return exchange.why;
	const { outcome, status } = exchange;
	if (outcome.kind === "failed") return `HTTP ${status}, class failed (${outcome.error})`;
	if (outcome.kind === "unavailable") return `HTTP ${status}, class unavailable (${outcome.reason})`;
	if (outcome.kind === "replayed") return `HTTP ${status}, refused as a replay`;
	// ok, and any class the classifier adds later: named as it names it.
	return `HTTP ${status}, class ${outcome.kind}`;
}

/**
 * A verified run's answer: a protocol answer of class ok, or of class failed (a real runtime
 * does not know the kit's piece, and says so with a 4xx and an error).
 */
export function accepted(exchange: Exchange): Verdict {
	if (!exchange.answered) return fail(exchange.why);
	if (exchange.outcome.kind === "ok" || exchange.outcome.kind === "failed") return pass(describe(exchange));
	if (exchange.outcome.kind === "replayed") return fail(`a first request was refused as a replay (HTTP ${exchange.status} ${REPLAYED_ERROR})`);
	return fail(describe(exchange));
}

/**
 * A request that fails verification: 401 with the protocol header and a JSON `{error}`, the
 * only refusal the scheduler takes as "refused us" rather than against the piece.
 */
export function refused(exchange: Exchange): Verdict {
	return refusedAs(exchange, PROTOCOL_VERSION, exchange.answered ? describe(exchange) : "");
}

/**
 * A refusal in the words of protocol `version`: 401, `bg-protocol: <version>`, JSON `{error}`.
 * `described` is the answer in a few words, for a failure that is not a 401 at all.
 */
export function refusedAs(reply: Reply | Exchange, version: string, described: string): Verdict {
	if (!reply.answered) return fail(reply.why);
	if (reply.status !== 401) return fail(`answered ${described}; a request that fails verification must be refused with 401`);
	if (reply.version === null) return fail("401 without the bg-protocol header");
	if (reply.version !== version) return fail(`401 with bg-protocol: ${reply.version}, not ${version}`);
	const error = errorOf(reply.body);
	if (error === null) return fail('401 whose body is not a JSON object with a non-empty string "error"');
	return pass(`401 ${error}`);
}

/** The non-empty string `error` of a JSON object body, or null. */
export function errorOf(body: string): string | null {
	try {
		const parsed: unknown = JSON.parse(body);
		if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) return null;
		const { error } = parsed as { error?: unknown };
		return typeof error === "string" && error.trim() ? error.trim() : null;
	} catch {
		return null;
	}
}
