import { base64urlnopad } from "@scure/base";
import type { Identity } from "../identity/ed25519";
import { HEADERS, PROTOCOL_VERSION, canonicalString, utf8 } from "./protocol";

/** The headers that sign one request to the runtime with the service identity. */
export async function signedHeaders(identity: Identity, method: string, url: URL, body: Uint8Array, now: number): Promise<Record<string, string>> {
	const timestamp = String(now);
	const canonical = await canonicalString(method, url.pathname, timestamp, body);
	const signature = await identity.sign(utf8(canonical));
	return {
		"content-type": "application/json",
		[HEADERS.version]: PROTOCOL_VERSION,
		[HEADERS.signer]: identity.did,
		[HEADERS.timestamp]: timestamp,
		[HEADERS.signature]: base64urlnopad.encode(signature),
	};
}
