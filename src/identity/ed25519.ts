import { base58, base64, base64urlnopad } from "@scure/base";

/**
 * The service identity: an Ed25519 key, as Common Fabric's `Identity` holds one. Web Crypto
 * does the signing; the key is never extractable from here and never logged.
 */
export interface Identity {
	/** The key's did:key, safe to publish. */
	did: string;
	/** Signs bytes; returns the 64-byte Ed25519 signature. */
	sign(data: Uint8Array): Promise<Uint8Array>;
}

/** The passphrase the replaced service used when none was set: insecure, for development. */
export const DEFAULT_OPERATOR_PASS = "implicit trust";

/** PKCS#8 wrapping of a raw 32-byte Ed25519 seed (RFC 8410): Web Crypto imports no raw private keys. */
const PKCS8_ED25519_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

/** The multicodec prefix of an Ed25519 public key in a did:key. */
const ED25519_MULTICODEC = Uint8Array.from([0xed, 0x01]);

const encoder = new TextEncoder();

/** SHA-256 of bytes. */
export async function sha256(data: Uint8Array): Promise<Uint8Array> {
	return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

/** `did:key:z` + base58btc(0xed 0x01 ‖ public key). */
export function didFromPublicKey(publicKey: Uint8Array): string {
	const bytes = new Uint8Array(ED25519_MULTICODEC.length + publicKey.length);
	bytes.set(ED25519_MULTICODEC);
	bytes.set(publicKey, ED25519_MULTICODEC.length);
	return `did:key:z${base58.encode(bytes)}`;
}

/** The raw Ed25519 public key inside a did:key, or null if it is not an Ed25519 did:key. */
export function publicKeyFromDid(did: string): Uint8Array | null {
	if (!did.startsWith("did:key:z")) return null;
	try {
		const bytes = base58.decode(did.slice("did:key:z".length));
		if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) return null;
		return bytes.slice(2);
	} catch {
		return null;
	}
}

/** The identity whose 32-byte seed is given (Common Fabric's `Identity.fromRaw`). */
export async function identityFromSeed(seed: Uint8Array): Promise<Identity> {
	if (seed.length !== 32) throw new Error("an Ed25519 seed is 32 bytes");
	const pkcs8 = new Uint8Array(PKCS8_ED25519_PREFIX.length + 32);
	pkcs8.set(PKCS8_ED25519_PREFIX);
	pkcs8.set(seed, PKCS8_ED25519_PREFIX.length);
	return identityFromPkcs8(pkcs8);
}

/** The identity of a PKCS#8-encoded Ed25519 private key. */
export async function identityFromPkcs8(pkcs8: Uint8Array): Promise<Identity> {
	// Extractable once, only to read the public half (JWK `x`); the private key stays inside.
	const extractable = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
	const jwk = (await crypto.subtle.exportKey("jwk", extractable)) as { x?: string };
	const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, false, ["sign"]);
	const did = didFromPublicKey(base64urlnopad.decode(jwk.x ?? ""));
	return {
		did,
		sign: async (data) => new Uint8Array(await crypto.subtle.sign("Ed25519", key, data)),
	};
}

/** `Identity.fromPassphrase(p)`: the key whose seed is SHA-256(utf8(p)). */
export async function identityFromPassphrase(passphrase: string): Promise<Identity> {
	return identityFromSeed(await sha256(encoder.encode(passphrase)));
}

/** `identity.derive(name)`: the key whose seed is SHA-256 of the signature of utf8(name). */
export async function deriveIdentity(parent: Identity, name: string): Promise<Identity> {
	return identityFromSeed(await sha256(await parent.sign(encoder.encode(name))));
}

/** A PKCS#8 key given as PEM or as bare base64 (e.g. a Worker secret). */
export function decodePkcs8(text: string): Uint8Array {
	const body = text.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, "");
	return base64.decode(body);
}
