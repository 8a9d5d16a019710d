import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api } from "../../src/api";
import { getEntry } from "../../src/registry/store";
import { newClientAddress, newPieceId, newSpace, seedPiece } from "../helpers";

/** A request through the router with some settings changed, as another deployment would have them. */
function withSettings(settings: Partial<Env>, path: string, init: RequestInit = {}): Promise<Response> {
	// A client address of its own, as call() gives each request, so the registration limit stays out of these tests.
	const headers = new Headers(init.headers);
	if (!headers.has("cf-connecting-ip")) headers.set("cf-connecting-ip", newClientAddress());
	return api.fetch(new Request(`https://scheduler.test${path}`, { ...init, headers }), { ...env, ...settings }, createExecutionContext());
}

function registration(fields = { space: newSpace(), pieceId: newPieceId(), integration: "gmail" }, headers: Record<string, string> = {}): [RequestInit, typeof fields] {
	return [{ method: "POST", headers, body: JSON.stringify(fields) }, fields];
}

describe("ALLOWED_ORIGINS", () => {
	const settings = { ALLOWED_ORIGINS: "https://app.example.org, https://other.example.org/" };

	it("lets a listed origin register, and says so in CORS", async () => {
		const [init, fields] = registration(undefined, { origin: "https://other.example.org" });
		const response = await withSettings(settings, "/api/integrations/bg", init);
		expect(response.status).toBe(200);
		expect(response.headers.get("access-control-allow-origin")).toBe("https://other.example.org");
		expect(await getEntry(env, fields)).not.toBeNull();
	});

	it("refuses a page of another origin with 403, storing nothing", async () => {
		const [init, fields] = registration(undefined, { origin: "https://evil.example.com" });
		const response = await withSettings(settings, "/api/integrations/bg", init);
		expect(response.status).toBe(403);
		expect(await response.json()).toMatchObject({ success: false, error: "origin https://evil.example.com may not register pieces (ALLOWED_ORIGINS)" });
		expect(response.headers.get("access-control-allow-origin")).toBeNull();
		expect(await getEntry(env, fields)).toBeNull();
	});

	it("answers a preflight only for a listed origin", async () => {
		const preflight = (origin: string) => withSettings(settings, "/api/integrations/bg", { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } });
		expect((await preflight("https://app.example.org")).headers.get("access-control-allow-origin")).toBe("https://app.example.org");
		expect((await preflight("https://evil.example.com")).headers.get("access-control-allow-origin")).toBeNull();
	});

	it("says Vary: Origin, and matches origins as browsers send them (case, trailing slash)", async () => {
		const [init] = registration(undefined, { origin: "https://app.example.org" });
		const response = await withSettings({ ALLOWED_ORIGINS: "https://App.Example.org/" }, "/api/integrations/bg", init);
		expect(response.status).toBe(200);
		expect(response.headers.get("access-control-allow-origin")).toBe("https://app.example.org");
		expect(response.headers.get("vary")).toContain("Origin");
	});

	it("still serves callers without an Origin (curl, other services)", async () => {
		const [init] = registration();
		expect((await withSettings(settings, "/api/integrations/bg", init)).status).toBe(200);
	});
});

describe("REGISTRATION_TOKEN", () => {
	const settings = { REGISTRATION_TOKEN: "reg-token" };

	it.each([
		["no token", {}],
		["a wrong token", { authorization: "Bearer nope" }],
	])("refuses %s with 401, storing nothing", async (_name, headers) => {
		const [init, fields] = registration(undefined, headers);
		const response = await withSettings(settings, "/api/integrations/bg", init);
		expect(response.status).toBe(401);
		expect(await response.json()).toMatchObject({ success: false, error: expect.stringContaining("REGISTRATION_TOKEN") });
		expect(await getEntry(env, fields)).toBeNull();
	});

	it.each([
		["the registration token", "reg-token"],
		["the admin token", "test-admin-token"],
	])("accepts %s", async (_name, token) => {
		const [init, fields] = registration(undefined, { authorization: `Bearer ${token}` });
		expect((await withSettings(settings, "/api/integrations/bg", init)).status).toBe(200);
		expect(await getEntry(env, fields)).not.toBeNull();
	});
});

describe("MAX_PIECES_PER_SPACE", () => {
	it("refuses a new piece in a full space with 409, but still re-registers its pieces", async () => {
		const space = newSpace();
		const existing = await Promise.all(Array.from({ length: 3 }, () => seedPiece({ space })));
		const settings = { MAX_PIECES_PER_SPACE: "3" };
		const [init, fields] = registration({ space, pieceId: newPieceId(), integration: "gmail" });
		const refused = await withSettings(settings, "/api/integrations/bg", init);
		expect(refused.status).toBe(409);
		expect(await refused.json()).toMatchObject({ success: false, error: `space ${space} already has 3 pieces, the most one space may register (MAX_PIECES_PER_SPACE)` });
		expect(await getEntry(env, fields)).toBeNull();

		const [again] = registration({ space, pieceId: existing[0]!.pieceId, integration: "gmail" });
		expect((await withSettings(settings, "/api/integrations/bg", again)).status).toBe(200);
		// Another space is not affected.
		const [other] = registration();
		expect((await withSettings(settings, "/api/integrations/bg", other)).status).toBe(200);
	});
});

describe("admin routes without a configured ADMIN_TOKEN", () => {
	it.each([
		["GET", "/api/integrations/bg"],
		["PATCH", `/api/integrations/bg/${newSpace()}/${newPieceId()}`],
		["DELETE", `/api/integrations/bg/${newSpace()}/${newPieceId()}`],
		["POST", `/api/integrations/bg/${newSpace()}/${newPieceId()}/run`],
	])("%s %s refuses everything with 503, never falls open", async (method, path) => {
		for (const authorization of [undefined, "Bearer ", "Bearer undefined", "Bearer test-admin-token"]) {
			const response = await withSettings({ ADMIN_TOKEN: undefined }, path, { method, headers: authorization ? { authorization } : {}, body: method === "PATCH" ? '{"enabled":false}' : undefined });
			expect(response.status).toBe(503);
			expect(await response.json()).toEqual({ success: false, error: "admin API disabled: set the ADMIN_TOKEN secret, or Cloudflare Access (ACCESS_TEAM_DOMAIN, ACCESS_AUD, ACCESS_ADMINS)" });
		}
	});
});

describe("health names insecure settings", () => {
	async function problems(settings: Partial<Env>): Promise<string[]> {
		return ((await (await withSettings(settings, "/api/health")).json()) as { problems: string[] }).problems;
	}

	it("the default passphrase", async () => {
		for (const OPERATOR_PASS of [undefined, "implicit trust"]) {
			expect((await problems({ OPERATOR_PASS })).join(" ")).toContain('signing with the default passphrase "implicit trust"');
		}
		expect(await problems({})).toEqual([]);
	});

	it("plain http to a remote runtime, but not to this machine", async () => {
		expect(await problems({ RUNTIME: undefined, PIECE_RUNTIME_URL: "http://runner.example/v1/run" })).toEqual(["PIECE_RUNTIME_URL uses plain http to a remote host: use https"]);
		expect(await problems({ RUNTIME: undefined, PIECE_RUNTIME_URL: "http://127.0.0.1:8788/v1/run" })).toEqual([]);
		expect(await problems({ RUNTIME: undefined, PIECE_RUNTIME_URL: "https://runner.example/v1/run" })).toEqual([]);
	});
});
