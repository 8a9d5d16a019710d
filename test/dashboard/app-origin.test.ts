import { randomBytes } from "node:crypto";
import { createServer, request as forward, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { base58, base64urlnopad } from "@scure/base";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, type System } from "./system";

/*
 * The Worker deployed on the app's own origin (docs/deploying-on-the-app-origin.md): the shell
 * registers with a relative URL, the app keeps its own /api/*, and the scheduler's dashboard
 * and admin API live under BASE_PATH. `npm start`'s system runs with BASE_PATH set; in front
 * of it, A STAND-IN FOR THE APP'S ORIGIN (Cloudflare's zone routing cannot run here): a Node
 * server that answers as the app does (its own /api/health, a shell page that posts as
 * cf-updater does) and hands the Worker exactly the paths the doc's Workers routes and
 * reverse-proxy lines hand it.
 */

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const PORT = 8797;
const PREFIX = "/bg-scheduler";

let system: System;
let app: Server;
let appOrigin: string;
let browser: Browser;

/** The paths the Worker gets on the app's origin: the doc's routes `/api/integrations/bg*` and `/bg-scheduler*`. */
const forWorker = (path: string) => path.startsWith("/api/integrations/bg") || path === PREFIX || path.startsWith(`${PREFIX}/`);

/** The shell's page: registers the piece named in its query exactly as cf-updater does, and shows `result.success`. */
const SHELL = `<!doctype html><title>shell</title><link rel="icon" href="data:,"><body><script>
const q = new URLSearchParams(location.search);
fetch("/api/integrations/bg", { method: "POST", body: JSON.stringify({ pieceId: q.get("pieceId"), space: q.get("space"), integration: "counter" }) })
	.then((response) => response.json())
	.then((result) => { document.body.dataset.result = String(result.success); });
</script></body>`;

beforeAll(async () => {
	system = await startSystem(PORT, PREFIX);
	app = createServer((request, response) => {
		const path = new URL(request.url!, "http://app").pathname;
		if (forWorker(path)) {
			const upstream = forward(`${system.origin}${request.url}`, { method: request.method, headers: request.headers }, (answer) => {
				response.writeHead(answer.statusCode!, answer.headers);
				answer.pipe(response);
			});
			request.pipe(upstream);
			return;
		}
		if (path === "/api/health") return void response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ app: "the app's own health" }));
		if (path === "/") return void response.writeHead(200, { "content-type": "text/html" }).end(SHELL);
		response.writeHead(404).end("the app's 404");
	});
	await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
	appOrigin = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
	browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"] });
}, 240_000);

afterAll(async () => {
	await browser?.close();
	app?.close();
	await system?.stop();
});

describe("the Worker on the app's origin, BASE_PATH " + PREFIX, () => {
	it("takes the shell's registration, and its dashboard under the prefix shows the piece run", async () => {
		const piece = { space: `did:key:z${base58.encode(new Uint8Array([0xed, 0x01, ...randomBytes(32)]))}`, pieceId: `fid1:${base64urlnopad.encode(randomBytes(32))}` };
		const context = await browser.newContext();
		const page = await context.newPage();
		const errors: string[] = [];
		page.on("pageerror", (error) => errors.push(String(error)));
		page.on("response", (response) => response.status() >= 400 && errors.push(`${response.status()} ${new URL(response.url()).pathname}`));

		await page.goto(`${appOrigin}/?${new URLSearchParams(piece)}`);
		await page.waitForSelector("body[data-result]", { state: "attached" });
		expect(await page.getAttribute("body", "data-result")).toBe("true");

		// The app's own /api/health is still the app's; the scheduler's is under the prefix.
		expect(await (await fetch(`${appOrigin}/api/health`)).json()).toEqual({ app: "the app's own health" });
		expect(await (await fetch(`${appOrigin}${PREFIX}/api/health`)).json()).toMatchObject({ service: "bg-piece-scheduler" });
		expect((await fetch(`${system.origin}/api/health`)).status).toBe(404);

		// The bare prefix leads to the dashboard, whose every request stays under it.
		const requested: string[] = [];
		page.on("request", (request) => requested.push(new URL(request.url()).pathname));
		await page.goto(`${appOrigin}${PREFIX}`);
		expect(new URL(page.url()).pathname).toBe(`${PREFIX}/`);
		await page.fill("#token", system.adminToken);
		await page.click("#login button[type=submit]");
		await page.waitForSelector("#board:not([hidden])");
		const row = page.locator(`tr[data-key="${piece.space}/${piece.pieceId}"]`);
		// Registered, then run by the reference runtime (the counter example succeeds).
		await expect
			.poll(async () => {
				await page.click("#refresh");
				return row.getAttribute("data-state");
			}, { timeout: 30_000, interval: 1_000 })
			.toBe("ok");
		expect(requested.length).toBeGreaterThan(3);
		// The bare prefix (the navigation, redirected) and then only paths under it.
		expect(requested[0]).toBe(PREFIX);
		expect(requested.slice(1).filter((path) => !path.startsWith(`${PREFIX}/`))).toEqual([]);

		// An admin action from the dashboard reaches the Worker under the prefix.
		await row.locator('[data-action="toggle"]').click();
		await expect.poll(() => row.getAttribute("data-state")).toBe("disabled");
		const entry = await fetch(`${appOrigin}${PREFIX}/api/integrations/bg/${piece.space}/${piece.pieceId}`);
		expect(await entry.json()).toMatchObject({ status: "Disabled via UI", integration: "counter" });
		// The one refusal: the dashboard's first call, made before a token is given (behind Cloudflare Access it would need none).
		expect(errors).toEqual([`401 ${PREFIX}/api/stats`]);
		await context.close();
	});
});
