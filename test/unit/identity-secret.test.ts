import { base64 } from "@scure/base";
import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { api } from "../../src/api";
import { handleMessage } from "../../src/consumer";
import { identityFromPassphrase, identityFromPkcs8 } from "../../src/identity/ed25519";
import { runPiece } from "../../src/runtime/client";
import { verifyRunRequest } from "../../src/runtime/verify";
import { tickMessage } from "../../src/messages";
import { getEntry } from "../../src/registry/store";
import { T0, seedPiece } from "../helpers";

/** A fresh Ed25519 key as PKCS#8, in PEM and bare base64. */
async function newKey(): Promise<{ pem: string; base64: string; did: string }> {
	const pair = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
	const pkcs8 = new Uint8Array((await crypto.subtle.exportKey("pkcs8", pair.privateKey)) as ArrayBuffer);
	const b64 = base64.encode(pkcs8);
	return { pem: `-----BEGIN PRIVATE KEY-----\n${b64}\n-----END PRIVATE KEY-----\n`, base64: b64, did: (await identityFromPkcs8(pkcs8)).did };
}

function health(settings: Partial<Env>) {
	return api.fetch(new Request("https://scheduler.test/api/health"), { ...env, ...settings }, createExecutionContext());
}

afterEach(() => vi.restoreAllMocks());

describe("IDENTITY: the service key as a secret", () => {
	it.each(["pem", "base64"] as const)("signs as the key given in %s, which wins over OPERATOR_PASS", async (form) => {
		const key = await newKey();
		const answer = (await (await health({ IDENTITY: key[form] })).json()) as { did: string };
		expect(answer.did).toBe(key.did);

		// The run request itself verifies against that key, and only that key.
		let captured: Request | undefined;
		const capture = { fetch: async (url: string | URL, init?: RequestInit) => ((captured = new Request(url, init)), new Response("{}", { status: 200 })) } as unknown as Fetcher;
		const piece = await seedPiece();
		await runPiece({ ...env, IDENTITY: key[form], RUNTIME: capture }, tickMessage(piece, T0), 1);
		const verified = await verifyRunRequest(captured!.clone(), { allowedSigners: [key.did], seenBefore: () => false });
		expect(verified).toMatchObject({ ok: true, signer: key.did });
		const service = (await identityFromPassphrase(env.OPERATOR_PASS!)).did;
		expect(await verifyRunRequest(captured!, { allowedSigners: [service], seenBefore: () => false })).toMatchObject({ ok: false, error: "signer not allowed" });
	});

	it("never shows the key in a response, an error or a log", async () => {
		const key = await newKey();
		const secretPart = key.base64.slice(-30);
		const printed: string[] = [];
		for (const method of ["log", "error", "warn", "info"] as const) {
			vi.spyOn(console, method).mockImplementation((...args: unknown[]) => void printed.push(args.map(String).join(" ")));
		}
		const seen: string[] = [];
		seen.push(await (await health({ IDENTITY: key.pem })).text());
		const piece = await seedPiece({ integration: "counter" });
		await handleMessage(tickMessage(piece, T0), 1, { ...env, IDENTITY: key.pem });
		seen.push(JSON.stringify(await getEntry(env, piece)));

		// A broken key: reported as such, without echoing it.
		const broken = `${key.base64.slice(0, -8)}AAAA`;
		seen.push(await (await health({ IDENTITY: broken })).text());
		const other = await seedPiece({ integration: "counter" });
		await handleMessage(tickMessage(other, T0), 1, { ...env, IDENTITY: broken });
		seen.push(JSON.stringify(await getEntry(env, other)));

		expect(seen.join("\n")).toContain("IDENTITY is not a valid PKCS#8 Ed25519 key");
		for (const text of [...seen, ...printed]) {
			expect(text).not.toContain(secretPart);
			expect(text).not.toContain(broken.slice(-30));
		}
		expect(printed.length).toBeGreaterThan(0);
	});
});
