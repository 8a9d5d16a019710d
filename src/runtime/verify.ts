import { base64urlnopad } from "@scure/base";
import { publicKeyFromDid } from "../identity/ed25519.ts";
import { readUpTo } from "../util/stream.ts";
import { HEADERS, PROTOCOL_VERSION, REPLAYED_ERROR, canonicalString, type RunRequestBody, type SignedKind } from "./protocol.ts";
import { MAX_BATCH_RUNS, MAX_V2_BODY_BYTES, PROTOCOL_V2, type DispatchBody, type ReportBody } from "./protocol-v2.ts";

/** Whom a verifier trusts (docs/runtime-protocol.md, "Verifying"). */
export interface VerifyOptions {
	/**
	 * did:keys allowed to sign: for a runtime, the scheduler's (its `GET /api/health` shows it);
	 * for the scheduler's report route, the runtimes' (RUNTIME_SIGNERS). An empty list refuses
	 * everyone, unless `allowAnySigner` says otherwise.
	 */
	allowedSigners: readonly string[];
	/** Accept any valid signature, whoever signed it: for development only. */
	allowAnySigner?: boolean;
	/**
	 * Called with each replay key of a verified request (a run's `<runId>#<attempt>`, both fixed
	 * by the signed body; a report request's `report#<signature>`); returns true if that key was
	 * seen before, which refuses the request (or, in a dispatch, that run).
	 * A redelivery is a new attempt, so it passes; a captured request sent again does not.
	 * Keep keys for at least twice `maxSkewMs`. (Pass `() => false` to opt out, knowingly.)
	 */
	seenBefore: (replayKey: string) => boolean | Promise<boolean>;
	/** Largest accepted distance between the signed timestamp and now; default 5 minutes. */
	maxSkewMs?: number;
	/** The verifier's clock, in ms; default `Date.now()`. */
	now?: number;
}

/** The largest body read: a run request is a few hundred bytes. */
export const MAX_REQUEST_BYTES = 64 * 1024;

/** An Ed25519 signature is 64 bytes. */
const SIGNATURE_BYTES = 64;

/**
 * A verified request, or why it was refused. Every refusal is 401, which the scheduler takes
 * as "the runtime refused the service" (nothing counted against the piece); a 400 would count
 * as the piece's failure.
 */
export type Verification = { ok: true; signer: string; body: RunRequestBody } | { ok: false; status: 401; error: string };

/** Default clock-skew window. */
export const DEFAULT_MAX_SKEW_MS = 5 * 60_000;

/** A refusal: every one is 401. */
type Refusal = { ok: false; status: 401; error: string };
const refuse = (error: string): Refusal => ({ ok: false, status: 401, error });

/** A request whose signature checks out: who signed it, its signature, and the exact bytes. */
type Signed = { ok: true; signer: string; signature: string; bytes: Uint8Array } | Refusal;

/**
 * The checks every signed message of the protocol passes, in order: headers present,
 * protocol version, signer allowed and an Ed25519 did:key, timestamp within the skew window,
 * signature shape, body size, and the signature over the canonical string of `kind`.
 */
async function verifySignature(request: Request, options: Omit<VerifyOptions, "seenBefore">, version: string, kind: SignedKind, maxBytes: number): Promise<Signed> {
	const signer = request.headers.get(HEADERS.signer);
	const timestamp = request.headers.get(HEADERS.timestamp);
	const signature = request.headers.get(HEADERS.signature);
	const sent = request.headers.get(HEADERS.version);
	if (!signer || !timestamp || !signature) return refuse("unsigned request");
	if (sent !== version) return refuse(`unsupported protocol version ${sent ?? "(none)"}`);
	if (!options.allowAnySigner && !options.allowedSigners.includes(signer)) return refuse("signer not allowed");
	const publicKey = publicKeyFromDid(signer);
	if (!publicKey) return refuse("signer is not an Ed25519 did:key");
	const signedAt = Number(timestamp);
	const maxSkew = options.maxSkewMs ?? DEFAULT_MAX_SKEW_MS;
	if (!/^\d{1,16}$/.test(timestamp) || Math.abs((options.now ?? Date.now()) - signedAt) > maxSkew) return refuse("stale or future timestamp");

	let signatureBytes: Uint8Array;
	try {
		signatureBytes = base64urlnopad.decode(signature);
	} catch {
		return refuse("malformed signature");
	}
	if (signatureBytes.length !== SIGNATURE_BYTES) return refuse("malformed signature");
	let read;
	try {
		read = await readUpTo(request.body, maxBytes);
	} catch {
		// The sender went away mid-body.
		return refuse("body unreadable");
	}
	const { bytes, truncated } = read;
	if (truncated) return refuse("body too large");
	const canonical = await canonicalString(request.method, new URL(request.url).pathname, timestamp, bytes, kind);
	try {
		const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
		if (!(await crypto.subtle.verify("Ed25519", key, signatureBytes, new TextEncoder().encode(canonical)))) return refuse("bad signature");
	} catch {
		// A public key that is not a curve point, or any other refusal by Web Crypto.
		return refuse("bad signature");
	}
	return { ok: true, signer, signature, bytes };
}

/** The body's JSON, or undefined if it is not JSON. */
function parseJson(bytes: Uint8Array): unknown {
	try {
		return JSON.parse(new TextDecoder().decode(bytes));
	} catch {
		return undefined;
	}
}

/** Whether a value has a run's identifying fields (only these are type-checked). */
function isRun(value: unknown): value is Pick<RunRequestBody, "space" | "pieceId" | "runId" | "attempt"> {
	const run = value as Partial<RunRequestBody> | null;
	return !!run && typeof run.runId === "string" && typeof run.space === "string" && typeof run.pieceId === "string" && Number.isInteger(run.attempt);
}

/**
 * Verifies a signed run request (protocol 1): protocol version, signer allow-list, clock
 * skew, signature over the canonical string, and replay of the runId. Never throws for
 * anything a caller sends: every refusal is a 401 Verification. Reads the request body (at
 * most 64 KB); pass a clone if you need it again.
 */
export async function verifyRunRequest(request: Request, options: VerifyOptions): Promise<Verification> {
	const signed = await verifySignature(request, options, PROTOCOL_VERSION, "bg-run-v1", MAX_REQUEST_BYTES);
	if (!signed.ok) return signed;
	const parsed = parseJson(signed.bytes);
	if (parsed === undefined) return refuse("body is not JSON");
	if (!isRun(parsed)) return refuse("body lacks space, pieceId, runId or attempt");
	if (await options.seenBefore(`${parsed.runId}#${parsed.attempt}`)) return refuse(REPLAYED_ERROR);
	return { ok: true, signer: signed.signer, body: parsed as RunRequestBody };
}

/** A verified dispatch (protocol 2), with the runIds whose replay key was seen before. */
export type DispatchVerification = { ok: true; signer: string; body: DispatchBody; replayed: Set<string> } | Refusal;

/**
 * Verifies a signed dispatch (protocol 2) for a runtime: the same checks as a run request,
 * with the canonical string of `bg-run-v2`, then each run's replay key (`<runId>#<attempt>`).
 * A run seen before is listed in `replayed`: acknowledge it `refused` with `replayed runId`
 * and take the others. Never throws; reads at most 512 KB of the body.
 */
export async function verifyDispatch(request: Request, options: VerifyOptions): Promise<DispatchVerification> {
	const signed = await verifySignature(request, options, PROTOCOL_V2, "bg-run-v2", MAX_V2_BODY_BYTES);
	if (!signed.ok) return signed;
	const parsed = parseJson(signed.bytes) as Partial<DispatchBody> | undefined;
	if (parsed === undefined) return refuse("body is not JSON");
	if (!parsed || !Array.isArray(parsed.runs) || parsed.runs.length > MAX_BATCH_RUNS || !parsed.runs.every(isRun) || typeof parsed.reportTo !== "string") {
		return refuse("body lacks runs (at most 100, each with space, pieceId, runId, attempt) or reportTo");
	}
	// All at once: a shared replay store answers 100 runs within the scheduler's acknowledgement timeout.
	const seen = await Promise.all(parsed.runs.map((run) => options.seenBefore(`${run.runId}#${run.attempt}`)));
	const replayed = new Set(parsed.runs.filter((_, i) => seen[i]).map((run) => run.runId));
	return { ok: true, signer: signed.signer, body: parsed as DispatchBody, replayed };
}

/** A verified report request (protocol 2). */
export type ReportVerification = { ok: true; signer: string; body: ReportBody } | Refusal;

/**
 * Verifies a runtime's signed report request (protocol 2) for the scheduler: the checks of a
 * run request with the canonical string of `bg-report-v2`, the runtime's did:key in
 * `allowedSigners`, and replay of the request itself (its signature, fixed by its timestamp
 * and bytes, is the replay key). Never throws; reads at most 512 KB of the body.
 */
export async function verifyReport(request: Request, options: VerifyOptions): Promise<ReportVerification> {
	const signed = await verifySignature(request, options, PROTOCOL_V2, "bg-report-v2", MAX_V2_BODY_BYTES);
	if (!signed.ok) return signed;
	const parsed = parseJson(signed.bytes) as Partial<ReportBody> | undefined;
	if (parsed === undefined) return refuse("body is not JSON");
	if (!parsed || !Array.isArray(parsed.reports) || parsed.reports.length > MAX_BATCH_RUNS) return refuse("body lacks reports (at most 100)");
	if (await options.seenBefore(`report#${signed.signature}`)) return refuse("replayed report");
	return { ok: true, signer: signed.signer, body: parsed as ReportBody };
}
