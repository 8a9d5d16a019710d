import { base64urlnopad } from "@scure/base";
import type { Identity } from "../identity/ed25519.ts";
import { HEADERS, PROTOCOL_VERSION, canonicalString, utf8, type SignedKind } from "./protocol.ts";

/**
 * The headers that sign one protocol message with `identity`: a v1 run request by default,
 * or (with `version` "2") a v2 dispatch (`bg-run-v2`, the scheduler) or report
 * (`bg-report-v2`, a runtime).
 */
export async function signedHeaders(
	identity: Identity,
	method: string,
	url: URL,
	body: Uint8Array,
	now: number,
	version: string = PROTOCOL_VERSION,
	kind: SignedKind = "bg-run-v1",
): Promise<Record<string, string>> {
	const timestamp = String(now);
	const canonical = await canonicalString(method, url.pathname, timestamp, body, kind);
	const signature = await identity.sign(utf8(canonical));
	return {
		"content-type": "application/json",
		[HEADERS.version]: version,
		[HEADERS.signer]: identity.did,
		[HEADERS.timestamp]: timestamp,
		[HEADERS.signature]: base64urlnopad.encode(signature),
	};
}
