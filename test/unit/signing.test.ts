import { describe, expect, it } from "vitest";
import { deriveIdentity, didFromPublicKey, identityFromPassphrase, identityFromSeed, publicKeyFromDid, type Identity } from "../../src/identity/ed25519";
import { HEADERS, PROTOCOL_VERSION, canonicalString, type RunRequestBody } from "../../src/runtime/protocol";
import { signedHeaders } from "../../src/runtime/sign";
import { DEFAULT_MAX_SKEW_MS, verifyRunRequest, type VerifyOptions } from "../../src/runtime/verify";
import { T0, newPieceId, newSpace } from "../helpers";

const encoder = new TextEncoder();
const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** base58btc, written here independently of the library src uses. */
function base58(bytes: Uint8Array): string {
	let n = 0n;
	for (const byte of bytes) n = n * 256n + BigInt(byte);
	let out = "";
	while (n > 0n) {
		out = BASE58[Number(n % 58n)]! + out;
		n /= 58n;
	}
	for (const byte of bytes) {
		if (byte !== 0) break;
		out = `1${out}`;
	}
	return out;
}

function hex(text: string): Uint8Array {
	return Uint8Array.from(text.match(/../g)!.map((pair) => parseInt(pair, 16)));
}

function base64url(text: string): Uint8Array {
	const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
	return Uint8Array.from(atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4)), (c) => c.charCodeAt(0));
}

/** Verifies with Web Crypto alone, given only the DID. */
async function subtleVerify(did: string, signature: Uint8Array, data: Uint8Array): Promise<boolean> {
	const publicKey = publicKeyFromDid(did);
	if (!publicKey) throw new Error("not an Ed25519 did:key");
	const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
	return crypto.subtle.verify("Ed25519", key, signature, data);
}

// RFC 8032 §7.1, TEST 1.
const RFC8032_SEED = hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
const RFC8032_PUBLIC = hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
const RFC8032_SIGNATURE = hex(
	"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
);

describe("identity", () => {
	it("from a passphrase is a did:key:z6Mk…: a 48-character multibase value (`z` + 47 base58 characters)", async () => {
		const identity = await identityFromPassphrase("test passphrase");
		expect(identity.did).toMatch(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/);
		expect(identity.did.slice("did:key:".length)).toHaveLength(48);
	});

	it("is stable for the same passphrase and differs for another", async () => {
		const a1 = await identityFromPassphrase("implicit trust");
		const a2 = await identityFromPassphrase("implicit trust");
		const b = await identityFromPassphrase("implicit trust ");
		expect(a1.did).toBe(a2.did);
		expect(b.did).not.toBe(a1.did);
	});

	it("from a passphrase is the key whose seed is SHA-256 of the passphrase", async () => {
		const seed = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode("common user")));
		expect((await identityFromPassphrase("common user")).did).toBe((await identityFromSeed(seed)).did);
	});

	it("matches RFC 8032's test vector: public key in the DID, signature bytes", async () => {
		const identity = await identityFromSeed(RFC8032_SEED);
		expect(identity.did).toBe(`did:key:z${base58(Uint8Array.from([0xed, 0x01, ...RFC8032_PUBLIC]))}`);
		expect(publicKeyFromDid(identity.did)).toEqual(RFC8032_PUBLIC);
		expect(await identity.sign(new Uint8Array(0))).toEqual(RFC8032_SIGNATURE);
	});

	it("refuses a seed that is not 32 bytes", async () => {
		await expect(identityFromSeed(new Uint8Array(31))).rejects.toThrow(/32 bytes/);
	});

	it("derives a stable child identity per name, different from the parent and from other names", async () => {
		const parent = await identityFromPassphrase("common user");
		const a1 = await deriveIdentity(parent, "home");
		const a2 = await deriveIdentity(parent, "home");
		const b = await deriveIdentity(parent, "work");
		expect(a1.did).toBe(a2.did);
		expect(a1.did).not.toBe(parent.did);
		expect(b.did).not.toBe(a1.did);
		const seed = new Uint8Array(await crypto.subtle.digest("SHA-256", await parent.sign(encoder.encode("home"))));
		expect(a1.did).toBe((await identityFromSeed(seed)).did);
	});
});

describe("did:key encoding", () => {
	it("round-trips a public key through its DID", () => {
		for (const fill of [0x00, 0x01, 0x7f, 0xff]) {
			const publicKey = new Uint8Array(32).fill(fill);
			publicKey[31] = 0x42;
			const did = didFromPublicKey(publicKey);
			expect(did).toMatch(/^did:key:z6Mk/);
			expect(did).toBe(`did:key:z${base58(Uint8Array.from([0xed, 0x01, ...publicKey]))}`);
			expect(publicKeyFromDid(did)).toEqual(publicKey);
		}
	});

	it("refuses DIDs that are not Ed25519 did:keys", () => {
		const good = didFromPublicKey(RFC8032_PUBLIC);
		expect(publicKeyFromDid(good.replace("did:key:z", "did:key:"))).toBeNull();
		expect(publicKeyFromDid(good.replace("did:key:", "did:web:"))).toBeNull();
		expect(publicKeyFromDid(`${good}0`)).toBeNull();
		expect(publicKeyFromDid(good.slice(0, -2))).toBeNull();
		// A secp256k1 did:key (multicodec 0xe7 0x01) is a valid did:key but not ours.
		expect(publicKeyFromDid(`did:key:z${base58(Uint8Array.from([0xe7, 0x01, ...new Uint8Array(33).fill(2)]))}`)).toBeNull();
	});
});

describe("signed run requests", () => {
	const URL_ = new URL("https://runtime.test/run");
	const NOW = T0 + 12_345;

	function body(overrides: Partial<RunRequestBody> = {}): RunRequestBody {
		return { space: newSpace(), pieceId: newPieceId(), integration: "counter", event: {}, runId: `tick:${T0}:x`, scheduledTime: T0, attempt: 1, ...overrides };
	}

	/** A request as the consumer sends it; `change` alters it after signing. */
	async function signed(
		identity: Identity,
		payload: RunRequestBody | string = body(),
		change: { url?: string; body?: string; headers?: Record<string, string | null>; method?: string } = {},
		signedAt = NOW,
	): Promise<Request> {
		const text = typeof payload === "string" ? payload : JSON.stringify(payload);
		const headers = new Headers(await signedHeaders(identity, "POST", URL_, encoder.encode(text), signedAt));
		for (const [name, value] of Object.entries(change.headers ?? {})) {
			if (value === null) headers.delete(name);
			else headers.set(name, value);
		}
		return new Request(change.url ?? URL_.href, { method: change.method ?? "POST", headers, body: change.body ?? text });
	}

	/** Verifies with any signer allowed and no replay memory, unless the test sets them. */
	const verify = (request: Request, options: Partial<VerifyOptions> = {}) =>
		verifyRunRequest(request, { now: NOW, allowedSigners: [], allowAnySigner: !options.allowedSigners, seenBefore: () => false, ...options });

	it.each([
		["3 bytes", "AAAA"],
		["65 bytes", "A".repeat(87)],
		["empty after decoding", "A"],
	])("refuses a signature of the wrong length (%s) with 401 rather than throwing", async (_name, signature) => {
		const identity = await identityFromPassphrase("signer");
		const result = await verify(await signed(identity, body(), { headers: { [HEADERS.signature]: signature } }), { allowedSigners: [identity.did] });
		expect(result).toMatchObject({ ok: false, status: 401, error: "malformed signature" });
	});

	it("refuses everyone with an empty allow-list, unless any signer is explicitly allowed", async () => {
		const identity = await identityFromPassphrase("signer");
		expect(await verify(await signed(identity), { allowedSigners: [] })).toMatchObject({ ok: false, error: "signer not allowed" });
		expect((await verify(await signed(identity), { allowedSigners: [], allowAnySigner: true })).ok).toBe(true);
	});

	it("refuses a body over 64 KB without reading it all", async () => {
		const identity = await identityFromPassphrase("signer");
		const huge = JSON.stringify({ ...body(), padding: "x".repeat(70_000) });
		expect(await verify(await signed(identity, huge))).toMatchObject({ ok: false, error: "body too large" });
	});

	it("signs with every protocol header", async () => {
		const identity = await identityFromPassphrase("signer");
		const headers = await signedHeaders(identity, "POST", URL_, encoder.encode("{}"), NOW);
		expect(headers[HEADERS.version]).toBe(PROTOCOL_VERSION);
		expect(headers[HEADERS.signer]).toBe(identity.did);
		expect(headers[HEADERS.timestamp]).toBe(String(NOW));
		expect(base64url(headers[HEADERS.signature]!)).toHaveLength(64);
		expect(headers["content-type"]).toBe("application/json");
	});

	it("verifies a signed request, answering the signer and the body", async () => {
		const identity = await identityFromPassphrase("signer");
		const payload = body();
		const result = await verify(await signed(identity, payload));
		expect(result).toEqual({ ok: true, signer: identity.did, body: payload });
	});

	it("verifies with the signer on the allow-list", async () => {
		const identity = await identityFromPassphrase("signer");
		const other = await identityFromPassphrase("other");
		const result = await verify(await signed(identity), { allowedSigners: [other.did, identity.did] });
		expect(result.ok).toBe(true);
	});

	it("refuses an unsigned request", async () => {
		const result = await verify(new Request(URL_.href, { method: "POST", body: JSON.stringify(body()) }));
		expect(result).toMatchObject({ ok: false, status: 401 });
	});

	it.each([HEADERS.signer, HEADERS.timestamp, HEADERS.signature])("refuses a request without the %s header", async (header) => {
		const identity = await identityFromPassphrase("signer");
		const result = await verify(await signed(identity, body(), { headers: { [header]: null } }));
		expect(result).toMatchObject({ ok: false, status: 401 });
	});

	it("refuses a tampered body", async () => {
		const identity = await identityFromPassphrase("signer");
		const payload = body({ integration: "counter" });
		const tampered = JSON.stringify({ ...payload, integration: "fail" });
		const result = await verify(await signed(identity, payload, { body: tampered }));
		expect(result).toMatchObject({ ok: false, status: 401 });
	});

	it("refuses a body changed only in whitespace (the exact bytes are signed)", async () => {
		const identity = await identityFromPassphrase("signer");
		const payload = body();
		const result = await verify(await signed(identity, payload, { body: `${JSON.stringify(payload)}\n` }));
		expect(result).toMatchObject({ ok: false, status: 401 });
	});

	it("refuses a request sent to another path", async () => {
		const identity = await identityFromPassphrase("signer");
		const result = await verify(await signed(identity, body(), { url: "https://runtime.test/admin/run" }));
		expect(result).toMatchObject({ ok: false, status: 401 });
	});

	it("refuses a request with another method", async () => {
		const identity = await identityFromPassphrase("signer");
		const result = await verify(await signed(identity, body(), { method: "PUT" }));
		expect(result).toMatchObject({ ok: false, status: 401 });
	});

	it("refuses a changed timestamp header (the timestamp is signed)", async () => {
		const identity = await identityFromPassphrase("signer");
		const result = await verify(await signed(identity, body(), { headers: { [HEADERS.timestamp]: String(NOW + 1) } }));
		expect(result).toMatchObject({ ok: false, status: 401 });
	});

	it("accepts timestamps within maxSkewMs and refuses those outside, either way", async () => {
		const identity = await identityFromPassphrase("signer");
		const maxSkewMs = 30_000;
		for (const [offset, ok] of [
			[0, true],
			[maxSkewMs, true],
			[-maxSkewMs, true],
			[maxSkewMs + 1, false],
			[-maxSkewMs - 1, false],
		] as const) {
			const result = await verify(await signed(identity, body(), {}, NOW + offset), { maxSkewMs });
			expect(result.ok, `offset ${offset}`).toBe(ok);
			if (!result.ok) expect(result.status).toBe(401);
		}
	});

	it("uses a 5-minute skew window by default", async () => {
		expect(DEFAULT_MAX_SKEW_MS).toBe(300_000);
		const identity = await identityFromPassphrase("signer");
		expect((await verify(await signed(identity, body(), {}, NOW - 299_000))).ok).toBe(true);
		expect(await verify(await signed(identity, body(), {}, NOW - 301_000))).toMatchObject({ ok: false, status: 401 });
	});

	it("refuses a signer not on the allow-list", async () => {
		const identity = await identityFromPassphrase("signer");
		const allowed = await identityFromPassphrase("the operator");
		const result = await verify(await signed(identity), { allowedSigners: [allowed.did] });
		expect(result).toMatchObject({ ok: false, status: 401 });
	});

	it("refuses a request signed by one key but claiming another's DID", async () => {
		const impostor = await identityFromPassphrase("impostor");
		const operator = await identityFromPassphrase("the operator");
		const request = await signed(impostor, body(), { headers: { [HEADERS.signer]: operator.did } });
		const result = await verify(request, { allowedSigners: [operator.did] });
		expect(result).toMatchObject({ ok: false, status: 401 });
	});

	it.each([
		["2", "a future version"],
		["0", "an unknown version"],
		[null, "no version"],
	])("refuses protocol version header %j (%s) with 401, so no piece is blamed", async (version, _reason) => {
		const identity = await identityFromPassphrase("signer");
		const result = await verify(await signed(identity, body(), { headers: { [HEADERS.version]: version } }));
		expect(result).toMatchObject({ ok: false, status: 401 });
	});

	it("refuses a signed body that is not JSON, or lacks the run fields, with 401", async () => {
		const identity = await identityFromPassphrase("signer");
		expect(await verify(await signed(identity, "not json"))).toMatchObject({ ok: false, status: 401 });
		const { attempt: _, ...withoutAttempt } = body();
		expect(await verify(await signed(identity, JSON.stringify(withoutAttempt)))).toMatchObject({ ok: false, status: 401 });
	});

	it("refuses a replay of the same runId and attempt, accepts a higher attempt", async () => {
		const identity = await identityFromPassphrase("signer");
		const seen = new Set<string>();
		const keys: string[] = [];
		const seenBefore = (key: string) => {
			keys.push(key);
			if (seen.has(key)) return true;
			seen.add(key);
			return false;
		};
		const first = body({ runId: "tick:1:a", attempt: 1 });
		expect((await verify(await signed(identity, first), { seenBefore })).ok).toBe(true);
		// The very same signed request, captured and sent again.
		expect(await verify(await signed(identity, first), { seenBefore })).toMatchObject({ ok: false, status: 401 });
		// A redelivery by the queue is the next attempt: it passes.
		expect((await verify(await signed(identity, { ...first, attempt: 2 }), { seenBefore })).ok).toBe(true);
		// Another run passes too.
		expect((await verify(await signed(identity, body({ runId: "tick:2:a", attempt: 1 })), { seenBefore })).ok).toBe(true);
		expect(keys).toEqual(["tick:1:a#1", "tick:1:a#1", "tick:1:a#2", "tick:2:a#1"]);
	});

	it("accepts an async seenBefore and does not consult it for a bad signature", async () => {
		const identity = await identityFromPassphrase("signer");
		let calls = 0;
		const seenBefore = async () => {
			calls++;
			return false;
		};
		const payload = body();
		await verify(await signed(identity, payload, { body: JSON.stringify({ ...payload, attempt: 9 }) }), { seenBefore });
		expect(calls).toBe(0);
		expect((await verify(await signed(identity, payload), { seenBefore })).ok).toBe(true);
		expect(calls).toBe(1);
	});

	it("produces a signature Web Crypto verifies against the DID's public key (independent of verifyRunRequest)", async () => {
		const identity = await identityFromPassphrase("signer");
		const text = JSON.stringify(body());
		const headers = await signedHeaders(identity, "POST", URL_, encoder.encode(text), NOW);
		const signature = base64url(headers[HEADERS.signature]!);
		const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
		const digest64 = btoa(String.fromCharCode(...digest)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
		// The canonical string, per the protocol: version, method, path, timestamp, body digest.
		const canonical = `bg-run-v1\nPOST\n/run\n${NOW}\n${digest64}`;
		expect(await canonicalString("post", "/run", String(NOW), encoder.encode(text))).toBe(canonical);
		expect(await subtleVerify(headers[HEADERS.signer]!, signature, encoder.encode(canonical))).toBe(true);
		expect(await subtleVerify(headers[HEADERS.signer]!, signature, encoder.encode(canonical.replace("/run", "/ran")))).toBe(false);
		const other = await identityFromPassphrase("other");
		expect(await subtleVerify(other.did, signature, encoder.encode(canonical))).toBe(false);
	});

	it("signs arbitrary bytes verifiable by Web Crypto with the DID's key", async () => {
		const identity = await identityFromPassphrase("implicit trust");
		const data = encoder.encode("hello, runtime");
		const signature = await identity.sign(data);
		expect(signature).toHaveLength(64);
		expect(await subtleVerify(identity.did, signature, data)).toBe(true);
		const flipped = Uint8Array.from(signature);
		flipped[0] = flipped[0]! ^ 1;
		expect(await subtleVerify(identity.did, flipped, data)).toBe(false);
	});
});
