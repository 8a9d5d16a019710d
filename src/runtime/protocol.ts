import { base64urlnopad } from "@scure/base";
import { sha256 } from "../identity/ed25519.ts";

/**
 * The runtime protocol, version 1 (docs/runtime-protocol.md): the request body, the signed
 * headers and the canonical string. Shared by the signer (consumer) and the verifier
 * (runtimes, including the reference runtime).
 */
export const PROTOCOL_VERSION = "1";

/** Header names, lower-case as HTTP/2 carries them. */
export const HEADERS = {
	version: "bg-protocol",
	signer: "bg-signer",
	timestamp: "bg-timestamp",
	signature: "bg-signature",
} as const;

/** The JSON body of a run request. */
export interface RunRequestBody {
	space: string;
	pieceId: string;
	integration: string;
	/** What the bgUpdater stream receives: always `{}`. */
	event: Record<string, never>;
	/** Unique per run; a runtime refuses one it has seen (replay). */
	runId: string;
	/** The tick (ms since epoch) the run belongs to. */
	scheduledTime: number;
	/** 1 on first delivery, more on redelivery of the same run. */
	attempt: number;
	/** Only on a liveness probe: run nothing, answer at once (see `probeBody`). */
	probe?: true;
}

/** The `integration` and `pieceId` of a liveness probe, which names no real piece. */
export const PROBE_PIECE = "bg-probe";

/**
 * A liveness probe's body: a signed run request that names no piece, sent when a run got no
 * answer in time, to learn whether the runtime itself still answers. A runtime SHOULD answer
 * it at once with 200 `{"ok": true, "probe": true}`; one that does not know probes answers
 * it as a run of an unknown piece (a 4xx with the protocol header), which proves it alive
 * just as well. Its space is the scheduler's own DID.
 */
export function probeBody(serviceDid: string, now: number): RunRequestBody {
	return {
		space: serviceDid,
		pieceId: PROBE_PIECE,
		integration: PROBE_PIECE,
		event: {},
		runId: `probe:${now}:${crypto.randomUUID()}`,
		scheduledTime: now - (now % 60_000),
		attempt: 1,
		probe: true,
	};
}

/**
 * The error a runtime answers (401) for a run it has already received: the same runId and
 * attempt again, as a duplicate queue delivery or a tick fired twice produces. The scheduler
 * takes it as "already running or ran" and drops its copy.
 */
export const REPLAYED_ERROR = "replayed runId";

const encoder = new TextEncoder();

/**
 * What a signature is for: its canonical string's first line, so a signature made for one
 * kind of message can never pass for another (a v1 run, a v2 dispatch, a v2 report).
 */
export type SignedKind = "bg-run-v1" | "bg-run-v2" | "bg-report-v2";

/**
 * The string that is signed: it binds the kind of message (and so the protocol version),
 * method, path, timestamp and the SHA-256 of the exact body bytes, one per line.
 */
export async function canonicalString(method: string, path: string, timestamp: string, body: Uint8Array, kind: SignedKind = "bg-run-v1"): Promise<string> {
	const digest = base64urlnopad.encode(await sha256(body));
	return [kind, method.toUpperCase(), path, timestamp, digest].join("\n");
}

/** UTF-8 bytes of a string. */
export function utf8(text: string): Uint8Array {
	return encoder.encode(text);
}
