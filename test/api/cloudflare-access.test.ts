import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { api } from "../../src/api";
import { UNKNOWN_KID_COOLDOWN_MS } from "../../src/api/cloudflare-access";
import { getEntry } from "../../src/registry/store";
import { TEST_AUD, newKey, newTeam, unsignedJwt, type TestTeam } from "../access";
import { piecePath, seedPiece } from "../helpers";
import { sleep } from "./client";

/** A request through the router with these settings, as a deployment behind Access would have them. */
function withSettings(settings: Partial<Env>, path: string, init: RequestInit = {}): Promise<Response> {
	return api.fetch(new Request(`https://scheduler.test${path}`, init), { ...env, ...settings }, createExecutionContext());
}

/** The admin list, with this Access JWT (and no admin token). */
function listWith(team: TestTeam, jwt: string | null, settings: Partial<Env> = {}): Promise<Response> {
	return withSettings({ ...team.settings, ...settings }, "/api/integrations/bg?limit=1", { headers: jwt === null ? {} : { "cf-access-jwt-assertion": jwt } });
}

async function errorOf(response: Response): Promise<string> {
	return ((await response.json()) as { error: string }).error;
}

describe("Cloudflare Access sign-in", () => {
	it("admits a valid JWT of an admin, with no admin token configured at all", async () => {
		const team = await newTeam();
		const response = await listWith(team, await team.jwt({ email: "alice@example.com" }), { ADMIN_TOKEN: undefined });
		expect(response.status).toBe(200);
		expect(await response.json()).toMatchObject({ success: true });
	});

	it("matches emails in any case, and @domain entries by the whole domain only", async () => {
		const team = await newTeam();
		for (const [email, status] of [
			["Alice@Example.COM", 200],
			["bob@ops.example.com", 200],
			["carol@OPS.example.com", 200],
			["mallory@sub.ops.example.com", 403],
			["mallory@evil-ops.example.com", 403],
			["mallory@example.com.evil.test", 403],
			["bob@example.com", 403],
		] as const) {
			expect((await listWith(team, await team.jwt({ email }))).status, email).toBe(status);
		}
	});

	it("refuses a valid JWT of someone not on ACCESS_ADMINS with 403, and changes nothing", async () => {
		const team = await newTeam();
		const piece = await seedPiece();
		const jwt = await team.jwt({ email: "mallory@example.org" });
		const response = await withSettings(team.settings, piecePath(piece.space, piece.pieceId), { method: "PATCH", headers: { "cf-access-jwt-assertion": jwt }, body: '{"enabled":false}' });
		expect(response.status).toBe(403);
		expect(await errorOf(response)).toBe("mallory@example.org is signed in with Cloudflare Access but is not an admin here (ACCESS_ADMINS)");
		expect((await getEntry(env, piece))?.disabledAt).toBe(0);
	});

	it("admits a service token named on ACCESS_ADMINS by its client id (common_name, no email), and no other", async () => {
		const team = await newTeam();
		expect((await listWith(team, await team.jwt({ common_name: "2f8e1c3b.access" }))).status).toBe(200);
		const other = await listWith(team, await team.jwt({ common_name: "99999999.access" }));
		expect(other.status).toBe(403);
		expect(await errorOf(other)).toContain("service token 99999999.access");
		// Neither an email nor a service token: nobody to name.
		expect((await listWith(team, await team.jwt({}))).status).toBe(401);
	});

	it('admits whoever Access admits with "*", people and service tokens', async () => {
		const team = await newTeam("*");
		expect((await listWith(team, await team.jwt({ email: "anyone@anywhere.test" }))).status).toBe(200);
		expect((await listWith(team, await team.jwt({ common_name: "any.access" }))).status).toBe(200);
	});

	it.each<[string, (team: TestTeam) => Promise<string | null>, RegExp]>([
		["no header (and no token)", async () => null, /Cloudflare Access|token/],
		["an empty header", async () => "", /Cloudflare Access|token/],
		["an expired JWT", (team) => team.jwt({ email: "alice@example.com", exp: Math.floor(Date.now() / 1000) - 3600, iat: Math.floor(Date.now() / 1000) - 7200, nbf: Math.floor(Date.now() / 1000) - 7200 }), /expired/],
		["a JWT not valid yet", (team) => team.jwt({ email: "alice@example.com", nbf: Math.floor(Date.now() / 1000) + 3600 }), /not valid yet/],
		["a JWT without expiry", (team) => new SignJWT({ email: "alice@example.com", aud: [TEST_AUD], iss: team.issuer }).setProtectedHeader({ alg: "RS256", kid: team.key.kid }).sign(team.key.privateKey), /expiry|exp/],
		["a JWT for another application", (team) => team.jwt({ email: "alice@example.com", aud: ["another-application-aud"] }), /another Access application/],
		["a JWT of another team", (team) => team.jwt({ email: "alice@example.com", iss: "https://other-team.cloudflareaccess.com" }), /another team/],
		["a JWT signed by another key (its own kid)", async (team) => team.jwt({ email: "alice@example.com" }, await newKey()), /not signed by the team's keys/],
		["a JWT forged with the team key's kid but another key", async (team) => team.jwt({ email: "alice@example.com" }, await newKey(team.key.kid)), /not signed by the team's keys/],
		["an unsigned JWT (alg: none)", async (team) => unsignedJwt({ email: "alice@example.com", aud: [TEST_AUD], iss: team.issuer, exp: Math.floor(Date.now() / 1000) + 3600 }), /RS256/],
		[
			"a JWT signed HS256 with the public key as its secret",
			async (team) => new SignJWT({ email: "alice@example.com", aud: [TEST_AUD], iss: team.issuer }).setProtectedHeader({ alg: "HS256", kid: team.key.kid }).setExpirationTime("1h").sign(new TextEncoder().encode(JSON.stringify(team.key.publicJwk))),
			/RS256/,
		],
		["not a JWT", async () => "not.a.jwt", /well-formed/],
	])("refuses %s with 401 and changes nothing", async (_name, make, mentions) => {
		const team = await newTeam();
		const piece = await seedPiece();
		const jwt = await make(team);
		for (const settings of [{}, { ADMIN_TOKEN: undefined }]) {
			const headers: Record<string, string> = jwt === null ? {} : { "cf-access-jwt-assertion": jwt };
			const response = await withSettings({ ...team.settings, ...settings }, piecePath(piece.space, piece.pieceId), { method: "DELETE", headers });
			expect(response.status).toBe(401);
			expect(await errorOf(response)).toMatch(mentions);
			expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
		}
		expect(await getEntry(env, piece)).not.toBeNull();
	});

	it("still takes the admin token beside Access, and either one suffices", async () => {
		const team = await newTeam();
		const token = { authorization: `Bearer ${env.ADMIN_TOKEN}` };
		expect((await withSettings(team.settings, "/api/integrations/bg?limit=1", { headers: token })).status).toBe(200);
		const wrongTokenGoodJwt = { authorization: "Bearer wrong", "cf-access-jwt-assertion": await team.jwt({ email: "alice@example.com" }) };
		expect((await withSettings(team.settings, "/api/integrations/bg?limit=1", { headers: wrongTokenGoodJwt })).status).toBe(200);
		const goodTokenBadJwt = { ...token, "cf-access-jwt-assertion": "not.a.jwt" };
		expect((await withSettings(team.settings, "/api/integrations/bg?limit=1", { headers: goodTokenBadJwt })).status).toBe(200);
	});
});

describe("the team's keys", () => {
	it("are fetched once and kept, not fetched per request", async () => {
		const team = await newTeam();
		for (let i = 0; i < 3; i++) expect((await listWith(team, await team.jwt({ email: "alice@example.com" }))).status).toBe(200);
		expect(await team.fetches()).toBe(1);
	});

	it(
		"are fetched again once for an unknown kid (a rotation), and not again for made-up kids within the cooldown",
		{ timeout: 30_000 },
		async () => {
			const team = await newTeam();
			expect((await listWith(team, await team.jwt({ email: "alice@example.com" }))).status).toBe(200);
			// Access rotates: the new key is published beside the old one.
			const next = await newKey();
			await team.publish(team.key, next);
			await sleep(UNKNOWN_KID_COOLDOWN_MS + 100);
			expect((await listWith(team, await team.jwt({ email: "alice@example.com" }, next))).status).toBe(200);
			expect(await team.fetches()).toBe(2);
			// Kids nobody published, sent in a row: one refusal each, no fetch each.
			for (let i = 0; i < 3; i++) expect((await listWith(team, await team.jwt({ email: "alice@example.com" }, await newKey()))).status).toBe(401);
			expect(await team.fetches()).toBe(2);
			// The old key is still good.
			expect((await listWith(team, await team.jwt({ email: "alice@example.com" }))).status).toBe(200);
		},
	);

	it("that cannot be fetched answer 503 with a message: neither a 401 nor an open door", async () => {
		const team = await newTeam();
		await team.fail(503);
		const jwt = await team.jwt({ email: "alice@example.com" });
		for (const settings of [{}, { ADMIN_TOKEN: undefined }]) {
			const response = await listWith(team, jwt, settings);
			expect(response.status).toBe(503);
			expect(await errorOf(response)).toMatch(/team's keys could not be fetched/);
		}
		// The admin token still works meanwhile.
		expect((await withSettings(team.settings, "/api/integrations/bg?limit=1", { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } })).status).toBe(200);
		// And once the certs answer again, so does Access.
		await team.publish(team.key);
		expect((await listWith(team, jwt)).status).toBe(200);
	});
});

describe("Access half-configured", () => {
	const cases: Array<[string, Partial<Env>, RegExp]> = [
		["a team without an AUD", { ACCESS_TEAM_DOMAIN: "myteam.cloudflareaccess.com", ACCESS_AUD: "", ACCESS_ADMINS: "*" }, /ACCESS_AUD is not set/],
		["an AUD without a team", { ACCESS_TEAM_DOMAIN: "", ACCESS_AUD: TEST_AUD, ACCESS_ADMINS: "*" }, /ACCESS_TEAM_DOMAIN is not set/],
		["no admins", { ACCESS_TEAM_DOMAIN: "myteam.cloudflareaccess.com", ACCESS_AUD: TEST_AUD, ACCESS_ADMINS: "" }, /ACCESS_ADMINS is empty/],
		["a team domain that is not one", { ACCESS_TEAM_DOMAIN: "https://evil.example.com/cdn-cgi", ACCESS_AUD: TEST_AUD, ACCESS_ADMINS: "*" }, /not a team domain/],
		["admins alone", { ACCESS_TEAM_DOMAIN: "", ACCESS_AUD: "", ACCESS_ADMINS: "alice@example.com" }, /ACCESS_TEAM_DOMAIN is not set/],
	];

	it.each(cases)("%s is a health problem, and never opens admin", async (_name, settings, problem) => {
		const health = (await (await withSettings(settings, "/api/health")).json()) as { status: string; problems: string[] };
		expect(health.status).toBe("degraded");
		expect(health.problems.join("\n")).toMatch(problem);
		const team = await newTeam("*");
		const jwt = await team.jwt({ email: "alice@example.com" });
		// Beside a token: the token works, an Access sign-in gets 503 saying what is missing.
		const refused = await withSettings(settings, "/api/integrations/bg?limit=1", { headers: { "cf-access-jwt-assertion": jwt } });
		expect(refused.status).toBe(503);
		expect(await errorOf(refused)).toMatch(problem);
		expect((await withSettings(settings, "/api/integrations/bg?limit=1", { headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` } })).status).toBe(200);
		// Alone: admin is closed to everyone.
		for (const headers of [{}, { "cf-access-jwt-assertion": jwt }, { authorization: `Bearer ${env.ADMIN_TOKEN}` }] as Record<string, string>[]) {
			const closed = await withSettings({ ...settings, ADMIN_TOKEN: undefined }, "/api/integrations/bg?limit=1", { headers });
			expect(closed.status).toBe(503);
			expect(await errorOf(closed)).toMatch(/^admin API disabled: .*half-configured/);
		}
	});

	it("a whole Access configuration, or none, is no problem", async () => {
		const team = await newTeam();
		for (const settings of [team.settings, { ADMIN_TOKEN: undefined, ...team.settings }, {}]) {
			const health = (await (await withSettings(settings, "/api/health")).json()) as { problems: string[] };
			expect(health.problems).toEqual([]);
		}
		const none = (await (await withSettings({ ADMIN_TOKEN: undefined }, "/api/health")).json()) as { problems: string[] };
		expect(none.problems).toEqual(["neither ADMIN_TOKEN nor Cloudflare Access is set: the admin API is disabled"]);
	});
});
