import { base64urlnopad } from "@scure/base";
import { publicKeyFromDid } from "../identity/ed25519.ts";
import { readUpTo } from "../util/stream.ts";
import { HEADERS, PROTOCOL_VERSION, REPLAYED_ERROR, canonicalString, utf8, type RunRequestBody } from "./protocol.ts";

/** How a runtime decides whom to trust (docs/runtime-protocol.md, "Verifying"). */
export interface VerifyOptions {
	/**
	 * did:keys allowed to dispatch runs: the scheduler's (its `GET /api/health` shows it). An
	 * empty list refuses everyone, unless `allowAnySigner` says otherwise.
	 */
	allowedSigners: readonly string[];
	/** Accept any valid signature, whoever signed it: for development only. */
	allowAnySigner?: boolean;
	/**
	 * Called once per verified request with its replay key (`<runId>#<attempt>`, both fixed by
	 * the signed body); returns true if that key was seen before, which refuses the request.
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

/**
 * Verifies a signed run request: protocol version, signer allow-list, clock skew, signature
 * over the canonical string, and replay of the runId. Never throws for anything a caller
 * sends: every refusal is a 401 Verification. Reads the request body (at most 64 KB); pass a
 * clone if you need it again.
 */
export async function verifyRunRequest(request: Request, options: VerifyOptions): Promise<Verification> {
	const refuse = (error: string): Verification => ({ ok: false, status: 401, error });
	const version = request.headers.get(HEADERS.version);
	const signer = request.headers.get(HEADERS.signer);
	const timestamp = request.headers.get(HEADERS.timestamp);
	const signature = request.headers.get(HEADERS.signature);
	if (!signer || !timestamp || !signature) return refuse("unsigned request");
	if (version !== PROTOCOL_VERSION) return refuse(`unsupported protocol version ${version ?? "(none)"}`);
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
	const { bytes: body, truncated } = await readUpTo(request.body, MAX_REQUEST_BYTES);
	if (truncated) return refuse("body too large");
	const canonical = await canonicalString(request.method, new URL(request.url).pathname, timestamp, body);
	try {
		const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
		if (!(await crypto.subtle.verify("Ed25519", key, signatureBytes, utf8(canonical)))) return refuse("bad signature");
	} catch {
		// A public key that is not a curve point, or any other refusal by Web Crypto.
		return refuse("bad signature");
	}

	let parsed: RunRequestBody;
	try {
		parsed = JSON.parse(new TextDecoder().decode(body)) as RunRequestBody;
	} catch {
		return refuse("body is not JSON");
	}
	if (!parsed || typeof parsed.runId !== "string" || typeof parsed.space !== "string" || typeof parsed.pieceId !== "string" || !Number.isInteger(parsed.attempt)) {
		return refuse("body lacks space, pieceId, runId or attempt");
	}
	if (await options.seenBefore(`${parsed.runId}#${parsed.attempt}`)) return refuse(REPLAYED_ERROR);
	return { ok: true, signer, body: parsed };
}
