import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { basePath, place } from "../../src/api/base-path";
import worker from "../../src/index";
import { identityFromPassphrase } from "../../src/identity/ed25519";
import { tickMessage } from "../../src/messages";
import { getEntry } from "../../src/registry/store";
import { utf8 } from "../../src/runtime/protocol";
import { signedHeaders } from "../../src/runtime/sign";
import { issueTicket } from "../../src/runtime/ticket";
import { T0, newPieceId, newSpace, piecePath, seedPiece } from "../helpers";

const PREFIX = "/bg-scheduler";

/** A request to the Worker deployed on the app's origin under PREFIX (its fetch handler, BASE_PATH set). */
function onAppOrigin(path: string, init: RequestInit = {}, settings: Partial<Env> = {}): Promise<Response> {
	const request = new Request(`https://app.example.com${path}`, init);
	return worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, { ...env, BASE_PATH: PREFIX, REPORT_URL: `https://app.example.com${PREFIX}/api/runtime/reports`, ...settings }, createExecutionContext());
}

const asAdmin = (init: RequestInit = {}): RequestInit => ({ ...init, headers: { ...init.headers, authorization: `Bearer ${env.ADMIN_TOKEN}` } });

describe("BASE_PATH, read", () => {
	it.each([
		["", ""],
		["/", ""],
		["/bg-scheduler", "/bg-scheduler"],
		["bg-scheduler/", "/bg-scheduler"],
		[" /ops/bg ", "/ops/bg"],
	])("%j is the prefix %j", (value, prefix) => {
		expect(basePath({ BASE_PATH: value })).toEqual({ prefix });
	});

	it.each(["/bg scheduler", "/a//b", "/../admin", "/bg?x", "/%2e%2e"])("refuses %j, saying what a prefix is", (value) => {
		expect(basePath({ BASE_PATH: value })).toMatchObject({ problem: expect.stringContaining("is not a path prefix") });
	});

	it("places only the registration route outside the prefix", () => {
		expect(place("/api/integrations/bg", "POST", PREFIX)).toEqual({ kind: "route", base: "" });
		expect(place("/api/integrations/bg", "OPTIONS", PREFIX)).toEqual({ kind: "route", base: "" });
		expect(place("/api/integrations/bg", "GET", PREFIX)).toEqual({ kind: "outside" });
		expect(place("/api/health", "GET", PREFIX)).toEqual({ kind: "outside" });
		expect(place("/bg-schedulerx/api/health", "GET", PREFIX)).toEqual({ kind: "outside" });
		expect(place(`${PREFIX}/api/health`, "GET", PREFIX)).toEqual({ kind: "route", base: PREFIX });
		expect(place("/api/health", "GET", "")).toEqual({ kind: "route", base: "" });
		expect(place(PREFIX, "GET", PREFIX)).toEqual({ kind: "redirect", location: `${PREFIX}/` });
	});
});

describe("the Worker on the app's origin, under a prefix", () => {
	it("takes the shell's registration at the exact path, as cf-updater posts it (relative URL, text/plain, no headers)", async () => {
		const fields = { space: newSpace(), pieceId: newPieceId(), integration: "gmail" };
		const response = await onAppOrigin("/api/integrations/bg", { method: "POST", body: JSON.stringify(fields) });
		expect(response.status).toBe(200);
		expect(await response.json()).toMatchObject({ success: true });
		expect(await getEntry(env, fields)).toMatchObject({ integration: "gmail", status: "Initializing" });
	});

	it("answers none of its other routes outside the prefix: the app's own /api/* stays the app's", async () => {
		for (const [method, path] of [
			["GET", "/api/health"],
			["GET", "/api/stats"],
			["GET", "/api/openapi.json"],
			["GET", "/api/integrations/bg"],
			["POST", "/api/runtime/reports"],
			["GET", "/"],
			["GET", "/app.js"],
		] as const) {
			const response = await onAppOrigin(path, asAdmin({ method }));
			expect(response.status, `${method} ${path}`).toBe(404);
			expect(((await response.json()) as { error: string }).error).toContain("/bg-scheduler/");
		}
	});

	it("serves health, stats, OpenAPI and the admin API under the prefix", async () => {
		const piece = await seedPiece({ integration: "prefixed" });
		const health = await onAppOrigin(`${PREFIX}/api/health`);
		expect(health.status).toBe(200);
		expect(((await health.json()) as { problems: string[] }).problems.join("\n")).not.toContain("BASE_PATH");
		expect((await onAppOrigin(`${PREFIX}/api/stats`, asAdmin())).status).toBe(200);
		const openapi = (await (await onAppOrigin(`${PREFIX}/api/openapi.json`)).json()) as { servers: { url: string }[] };
		expect(openapi.servers).toEqual([{ url: PREFIX }]);
		const status = await onAppOrigin(`${PREFIX}${piecePath(piece.space, piece.pieceId)}`);
		expect(await status.json()).toMatchObject({ integration: "prefixed" });
		const disabled = await onAppOrigin(`${PREFIX}${piecePath(piece.space, piece.pieceId)}`, asAdmin({ method: "PATCH", body: JSON.stringify({ enabled: false }) }));
		expect(disabled.status).toBe(200);
		expect((await getEntry(env, piece))!.disabledAt).toBeGreaterThan(0);
		expect((await onAppOrigin(`${PREFIX}/api/integrations/bg?space=${encodeURIComponent(piece.space)}`)).status).toBe(401);
	});

	it("takes a registration under the prefix too (the CLI with --url …/bg-scheduler)", async () => {
		const fields = { space: newSpace(), pieceId: `of:${newPieceId()}`, integration: "gmail" };
		expect((await onAppOrigin(`${PREFIX}/api/integrations/bg`, { method: "POST", body: JSON.stringify(fields) })).status).toBe(200);
		expect(await getEntry(env, { space: fields.space, pieceId: fields.pieceId.slice(3) })).not.toBeNull();
	});

	it("serves the dashboard's files under the prefix, with their security headers, and keeps redirects inside it", async () => {
		const page = await onAppOrigin(`${PREFIX}/`);
		expect(page.status).toBe(200);
		const html = await page.text();
		expect(html).toContain("<title>Background pieces");
		// Relative URLs: they resolve under whatever prefix the page is served from.
		expect(html).toContain('src="app.js"');
		expect(page.headers.get("content-security-policy")).toContain("default-src 'self'");
		const script = await onAppOrigin(`${PREFIX}/app.js`);
		expect(script.status).toBe(200);
		expect(await script.text()).toContain('const API = "api/integrations/bg"');
		const bare = await onAppOrigin(PREFIX + "?listPage=5");
		expect(bare.status).toBe(308);
		expect(bare.headers.get("location")).toBe(`${PREFIX}/?listPage=5`);
		// Deployed, the assets answer /index.html with a redirect to / (html_handling); locally, with the page.
		const index = await onAppOrigin(`${PREFIX}/index.html`, { redirect: "manual" });
		expect(index.status === 200 ? (await index.text()).includes("<title>Background pieces") : index.headers.get("location")).toBe(index.status === 200 ? true : `${PREFIX}/`);
		expect((await onAppOrigin(`${PREFIX}/no-such-file.js`)).status).toBe(404);
	});

	it("takes a runtime's report at the prefixed REPORT_URL, its signature over the path it was sent to", async () => {
		const piece = await seedPiece();
		const service = await identityFromPassphrase(env.OPERATOR_PASS!);
		const runtime = await identityFromPassphrase("test runtime pass");
		const message = tickMessage(piece, T0);
		const body = JSON.stringify({ reports: [{ ticket: await issueTicket(service, message, 1, Date.now(), 300), runId: message.runId, outcome: "ok", durationMs: 5 }] });
		const target = new URL(`https://app.example.com${PREFIX}/api/runtime/reports`);
		const headers = await signedHeaders(runtime, "POST", target, utf8(body), Date.now(), "2", "bg-report-v2");
		const answer = await onAppOrigin(target.pathname, { method: "POST", headers, body }, { RUNTIME_PROTOCOL: "2" });
		expect(answer.status).toBe(200);
		expect(await answer.json()).toMatchObject({ results: [{ status: "recorded" }] });
		expect(await getEntry(env, piece)).toMatchObject({ status: "Success" });
	});

	it("says in health when REPORT_URL points outside the prefix", async () => {
		const health = await onAppOrigin(`${PREFIX}/api/health`, {}, { RUNTIME_PROTOCOL: "2", REPORT_URL: "https://app.example.com/api/runtime/reports" });
		const { status, problems } = (await health.json()) as { status: string; problems: string[] };
		expect(status).toBe("degraded");
		expect(problems).toContain(`REPORT_URL's path is /api/runtime/reports, but this Worker takes reports at ${PREFIX}/api/runtime/reports (BASE_PATH)`);
	});

	it("with a BASE_PATH that is not a path, still registers, and says what to fix everywhere else", async () => {
		const settings = { BASE_PATH: "bg scheduler" };
		const fields = { space: newSpace(), pieceId: newPieceId(), integration: "gmail" };
		expect((await onAppOrigin("/api/integrations/bg", { method: "POST", body: JSON.stringify(fields) }, settings)).status).toBe(200);
		const health = await onAppOrigin("/api/health", {}, settings);
		expect(health.status).toBe(503);
		expect(((await health.json()) as { error: string }).error).toContain('BASE_PATH "bg scheduler" is not a path prefix');
	});
});

describe("the Worker on a host of its own (BASE_PATH empty)", () => {
	it("serves every route at its plain path, as before", async () => {
		const own = (path: string) => worker.fetch(new Request(`https://bg.example.com${path}`) as Request<unknown, IncomingRequestCfProperties>, { ...env, BASE_PATH: "" }, createExecutionContext());
		expect((await own("/api/health")).status).toBe(200);
		expect(((await (await own("/api/openapi.json")).json()) as { servers: unknown }).servers).toEqual([{ url: "/" }]);
		expect((await own("/bg-scheduler/api/health")).status).toBe(404);
	});
});
