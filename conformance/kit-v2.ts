import { base64urlnopad } from "@scure/base";
import type { Identity } from "../src/identity/ed25519";
import { classifyDispatch, type DispatchVerdict } from "../src/policy/acks";
import type { Outcome } from "../src/policy/outcome";
import { probeBody, utf8, type SignedKind } from "../src/runtime/protocol";
import { PROTOCOL_V2, type DispatchBody, type DispatchedRun } from "../src/runtime/protocol-v2";
import { signedHeaders } from "../src/runtime/sign";
import { bytesOf, post, runBody, type Kit } from "./kit";

/** A dispatch's answer, classified per run as the scheduler would, or why there was none. */
export type Dispatched =
	| { answered: true; status: number; version: string | null; body: string; retryAfter: string | null; verdict: DispatchVerdict }
	| { answered: false; why: string };

/** A run for the kit's piece with a fresh runId and a ticket, in the scheduler's key order. */
export function dispatchedRun(kit: Kit): DispatchedRun {
	return { ...runBody(kit), ticket: freshTicket() };
}

/** A liveness probe as the scheduler dispatches one: a probe run with an empty ticket. */
export function probeRun(kit: Kit): DispatchedRun {
	return { ...probeBody(kit.identity.did, Date.now()), ticket: "" } as DispatchedRun;
}

/**
 * Something shaped like the scheduler's tickets (base64url of JSON, a dot, base64url of a
 * 32-byte MAC), random each time, so a runtime that hands back anything but these exact bytes
 * is caught. It is sealed by no one: to a runtime a ticket is opaque.
 */
export function freshTicket(): string {
	const claims = { n: crypto.randomUUID(), d: Date.now() };
	return `${base64urlnopad.encode(utf8(JSON.stringify(claims)))}.${base64urlnopad.encode(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/**
 * The dispatch's `timeoutMs`: most of the report wait, so a runtime stops a run that hangs
 * and reports it (as timed out) while the kit still listens; the rest leaves time for the
 * runtime's batching and the report's delivery.
 */
export function runTimeoutOf(kit: Kit): number {
	return Math.max(1, Math.floor(kit.reportTimeoutMs * 0.8));
}

/** A dispatch of these runs, reporting to the kit's listener. */
export function dispatchBody(kit: Kit, runs: DispatchedRun[]): DispatchBody {
	if (!kit.reports) throw new Error("no report listener: the protocol 2 checks need one");
	return { runs, reportTo: kit.reports.reportTo.href, timeoutMs: runTimeoutOf(kit) };
}

/** Headers signing a dispatch's bytes (bg-protocol 2, bg-run-v2 unless `kind` says otherwise). */
export function signDispatch(kit: Kit, bytes: Uint8Array, options: { at?: number; signer?: Identity; kind?: SignedKind } = {}): Promise<Record<string, string>> {
	return signedHeaders(options.signer ?? kit.identity, "POST", kit.url, bytes, options.at ?? Date.now(), PROTOCOL_V2, options.kind ?? "bg-run-v2");
}

/** Signs and sends a dispatch of these runs, exactly as the scheduler makes one. */
export async function dispatch(kit: Kit, runs: DispatchedRun[]): Promise<Dispatched> {
	const bytes = bytesOf(dispatchBody(kit, runs));
	return sendDispatch(kit, bytes, await signDispatch(kit, bytes), runs.map((run) => run.runId));
}

/** POSTs a dispatch's bytes with headers and classifies the answer for `runIds`. Never throws. */
export async function sendDispatch(kit: Kit, bytes: Uint8Array, headers: Record<string, string>, runIds: readonly string[]): Promise<Dispatched> {
	const reply = await post(kit, bytes, headers);
	if (!reply.answered) return reply;
	return { ...reply, verdict: classifyDispatch(reply.status, reply.body, reply.version, reply.retryAfter, runIds) };
}

/** The ack's outcome for one run, or null when the whole dispatch was not taken. */
export function ackOf(dispatched: Dispatched, runId: string): Outcome | null {
	if (!dispatched.answered || dispatched.verdict.kind !== "acked") return null;
	return dispatched.verdict.outcomes.get(runId) ?? null;
}

/** One run's ack in a few words, as the scheduler reads it. */
export function describeAck(outcome: Outcome): string {
	switch (outcome.kind) {
		case "accepted":
			return "run acknowledged accepted";
		case "failed":
			return `run acknowledged failed (${outcome.error})`;
		case "busy":
			return `run acknowledged busy (run ${outcome.runningRunId} still going)`;
		case "replayed":
			return "run acknowledged refused (replayed runId)";
		case "unavailable":
			return `run's ack of class unavailable (${outcome.reason})`;
		default:
			return `run's ack of class ${outcome.kind}`;
	}
}

/** A dispatch's answer for one run in a few words: its status, and the run's ack or the dispatch's class. */
export function describeDispatch(dispatched: Dispatched, runId: string): string {
	if (!dispatched.answered) return dispatched.why;
	const { status, verdict } = dispatched;
	if (verdict.kind === "unavailable") return `HTTP ${status}, class unavailable (${verdict.outcome.reason})`;
	return `HTTP ${status}, ${describeAck(verdict.outcomes.get(runId) ?? { kind: "unavailable", reason: "not acknowledged" })}`;
}
