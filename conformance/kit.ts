import { base64urlnopad } from "@scure/base";
import { identityFromSeed, type Identity } from "../src/identity/ed25519";
import { classifyResponse, type Outcome } from "../src/policy/outcome";
import { HEADERS, utf8, type RunRequestBody } from "../src/runtime/protocol";
import { signedHeaders } from "../src/runtime/sign";
import { readUpTo } from "../src/util/stream";
import type { ReportInbox } from "./reports";

/** How much of an answer is read: the scheduler reads no more either. */
const MAX_ANSWER_BYTES = 64 * 1024;

/** The runtime's answer to one request as it came, or why there was none. */
export type Reply =
	| { answered: true; status: number; version: string | null; body: string; retryAfter: string | null }
	| { answered: false; why: string };

/** The runtime's answer to one protocol 1 request, classified, or why there was none. */
export type Exchange =
	| { answered: true; status: number; version: string | null; body: string; outcome: Outcome }
	| { answered: false; why: string };

/** What every check is given: whom to call, as whom, about which piece. */
export interface Kit {
	url: URL;
	/** The signer the runtime is expected to allow (the scheduler's identity). */
	identity: Identity;
	space: string;
	piece: string;
	integration: string;
	timeoutMs: number;
	/** Protocol 2: the kit's report endpoint, where runtimes are told to report (null in protocol 1). */
	reports: ReportInbox | null;
	/** Protocol 2: how long the `report` check waits for a run's report. */
	reportTimeoutMs: number;
}

/** A run request body for the kit's piece with a fresh runId, in the scheduler's key order. */
export function runBody(kit: Kit): RunRequestBody {
	const now = Date.now();
	return { space: kit.space, pieceId: kit.piece, integration: kit.integration, event: {}, runId: freshRunId(), scheduledTime: now - (now % 60_000), attempt: 1 };
}

/**
 * A runId as an admin's run-now has it (`manual:<ms>:<uuid>`): the kind of run a runtime can
 * be sent at any time, so a runtime that checks the form takes it.
 */
function freshRunId(): string {
	return `manual:${Date.now()}:${crypto.randomUUID()}`;
}

/** The body's bytes, as the scheduler sends them (JSON, UTF-8, no trailing newline). */
export function bytesOf(body: object): Uint8Array {
	return utf8(JSON.stringify(body));
}

/** The scheduler's headers for these bytes, signed at `at` by `signer` (default: the kit's identity, now). */
export function sign(kit: Kit, bytes: Uint8Array, options: { at?: number; signer?: Identity } = {}): Promise<Record<string, string>> {
	return signedHeaders(options.signer ?? kit.identity, "POST", kit.url, bytes, options.at ?? Date.now());
}

/** Signs and sends a body: a run request exactly as the scheduler makes one. */
export async function sendSigned(kit: Kit, body: RunRequestBody): Promise<Exchange> {
	const bytes = bytesOf(body);
	return send(kit, bytes, await sign(kit, bytes));
}

/**
 * POSTs bytes with headers to the run endpoint and classifies the answer as the scheduler
 * would (protocol 1). Never throws: no answer within the timeout, or none at all, is an
 * Exchange too.
 */
export async function send(kit: Kit, bytes: Uint8Array, headers: Record<string, string>): Promise<Exchange> {
	const reply = await post(kit, bytes, headers);
	if (!reply.answered) return reply;
	const { status, version, body } = reply;
	return { answered: true, status, version, body, outcome: classifyResponse(status, body, version) };
}

/**
 * POSTs bytes with headers to the endpoint and reads the answer (its first 64 KB), as the
 * scheduler does, without classifying it. Never throws. Redirects are not followed, as the
 * scheduler follows none.
 */
export async function post(kit: Kit, bytes: Uint8Array, headers: Record<string, string>): Promise<Reply> {
	try {
		// The signal also bounds reading the body: a runtime that sends headers and then stalls is caught.
		const response = await fetch(kit.url, { method: "POST", headers, body: bytes, redirect: "manual", signal: AbortSignal.timeout(kit.timeoutMs) });
		const { bytes: answer } = await readUpTo(response.body, MAX_ANSWER_BYTES);
		const body = new TextDecoder().decode(answer);
		return { answered: true, status: response.status, version: response.headers.get(HEADERS.version), body, retryAfter: response.headers.get("retry-after") };
	} catch (error) {
		const failure = error as Error & { cause?: { code?: string; message?: string } };
		if (failure.name === "TimeoutError") return { answered: false, why: `no answer within ${kit.timeoutMs} ms` };
		return { answered: false, why: `unreachable: ${failure.cause?.code ?? failure.cause?.message ?? failure.message}` };
	}
}

/** An identity no runtime has heard of: a fresh random Ed25519 key. */
export function foreignIdentity(): Promise<Identity> {
	return identityFromSeed(crypto.getRandomValues(new Uint8Array(32)));
}

/** A fresh valid space DID (an Ed25519 did:key) for test runs. */
export async function freshSpace(): Promise<string> {
	return (await foreignIdentity()).did;
}

/** A fresh valid piece id: `fid1:` + base64url of 32 random bytes. */
export function freshPiece(): string {
	return `fid1:${base64urlnopad.encode(crypto.getRandomValues(new Uint8Array(32)))}`;
}
