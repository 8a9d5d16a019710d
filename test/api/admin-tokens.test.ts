import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api } from "../../src/api";
import { adminTokens, matchAdminToken, tokenFingerprint } from "../../src/api/admin-tokens";
import { getEntry } from "../../src/registry/store";
import { newPieceId, newSpace } from "../helpers";

/** A request through the router with ADMIN_TOKEN (and more) as a deployment would have them. */
function withSettings(settings: Partial<Env>, path: string, init: RequestInit = {}): Promise<Response> {
	return api.fetch(new Request(`https://scheduler.test${path}`, init), { ...env, ...settings }, createExecutionContext());
}

const list = (settings: Partial<Env>, token: string) => withSettings(settings, "/api/integrations/bg?limit=1", { headers: { authorization: `Bearer ${token}` } });

describe("rotating the admin token without refusal", () => {
	it("takes the old and the new token at once, then only the new once the old is retired", async () => {
		// Before: one token.
		expect((await list({ ADMIN_TOKEN: "old-token-1" }, "old-token-1")).status).toBe(200);
		// During: `wrangler secret put ADMIN_TOKEN` with both, the new one first.
		const during = { ADMIN_TOKEN: "new-token-2 old-token-1" };
		expect((await list(during, "new-token-2")).status).toBe(200);
		expect((await list(during, "old-token-1")).status).toBe(200);
		expect((await list(during, "neither")).status).toBe(401);
		// After: the new one alone; the old one is refused.
		const after = { ADMIN_TOKEN: "new-token-2" };
		expect((await list(after, "new-token-2")).status).toBe(200);
		const retired = await list(after, "old-token-1");
		expect(retired.status).toBe(401);
		expect(await retired.json()).toMatchObject({ success: false, error: expect.stringContaining("wrong admin token") });
	});

	it("splits ADMIN_TOKEN at commas and whitespace (a trailing newline from a pipe included), and never matches a part of a token or the list", async () => {
		expect(adminTokens({ ADMIN_TOKEN: " a-1,b-2\n c-3\t\n" })).toEqual(["a-1", "b-2", "c-3"]);
		expect(adminTokens({ ADMIN_TOKEN: "" })).toEqual([]);
		expect(adminTokens({ ADMIN_TOKEN: " , " })).toEqual([]);
		const settings = { ADMIN_TOKEN: "alpha-token,beta-token" };
		for (const token of ["alpha-token", "beta-token"]) expect((await list(settings, token)).status, token).toBe(200);
		for (const token of ["alpha-token,beta-token", "alpha", "beta-token,", ","]) expect((await list(settings, token)).status, token).toBe(401);
		// A list of nothing but separators is no token: admin stays closed.
		expect((await list({ ADMIN_TOKEN: " , " }, ",")).status).toBe(503);
	});

	it("names a token by the first 8 hex characters of its SHA-256, whichever of the list it is", async () => {
		// printf %s new-token-2 | sha256sum
		const digest = Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("new-token-2"))), (b) => b.toString(16).padStart(2, "0")).join("");
		expect(await tokenFingerprint("new-token-2")).toBe(digest.slice(0, 8));
		expect(await matchAdminToken("new-token-2", ["old-token-1", "new-token-2"])).toBe(digest.slice(0, 8));
		expect(await matchAdminToken("new-token-2", ["new-token-2", "old-token-1"])).toBe(digest.slice(0, 8));
		expect(await matchAdminToken("new-token-", ["new-token-2"])).toBeNull();
		expect(await matchAdminToken("x", [])).toBeNull();
	});

	it("lets every valid admin token register where REGISTRATION_TOKEN is set", async () => {
		const settings = { REGISTRATION_TOKEN: "reg-token", ADMIN_TOKEN: "new-token-2, old-token-1" };
		for (const [token, status] of [["reg-token", 200], ["new-token-2", 200], ["old-token-1", 200], ["retired-token", 401]] as const) {
			const fields = { space: newSpace(), pieceId: newPieceId(), integration: "gmail" };
			const response = await withSettings(settings, "/api/integrations/bg", { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify(fields) });
			expect(response.status, token).toBe(status);
			expect((await getEntry(env, fields)) !== null, token).toBe(status === 200);
		}
	});
});
