import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { base58, base64urlnopad } from "@scure/base";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSystem, type System } from "./system";

/*
 * The dashboard in a real headless Chromium (Debian's `chromium`, driven by playwright-core)
 * against the system `npm start` runs: scheduler, reference runtime, real local KV and Queues.
 * Screenshots of each step go to SCREENSHOT_DIR (default .wrangler/screenshots);
 * `npm run screenshots` writes them to docs/screenshots.
 */

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const SCREENSHOTS = process.env.SCREENSHOT_DIR || ".wrangler/screenshots";
const PORT = 8795;

let system: System;
let browser: Browser;
const pieces: Record<string, { space: string; pieceId: string }> = {};

const newSpace = () => `did:key:z${base58.encode(new Uint8Array([0xed, 0x01, ...randomBytes(32)]))}`;
const newPieceId = () => `fid1:${base64urlnopad.encode(randomBytes(32))}`;

async function api(path: string, init: RequestInit = {}) {
	const response = await fetch(`${system.base}${path}`, { ...init, headers: { authorization: `Bearer ${system.adminToken}`, "content-type": "application/json", ...init.headers } });
	return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function register(name: string, integration: string) {
	const piece = { space: newSpace(), pieceId: newPieceId() };
	const { status } = await api("/api/integrations/bg", { method: "POST", body: JSON.stringify({ ...piece, integration }) });
	expect(status).toBe(200);
	pieces[name] = piece;
	return piece;
}

const path = (p: { space: string; pieceId: string }) => `/api/integrations/bg/${p.space}/${p.pieceId}`;

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 30_000) {
	const deadline = Date.now() + timeoutMs;
	while (!(await check())) {
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await new Promise((resolve) => setTimeout(resolve, 250));
	}
}

const status = async (p: { space: string; pieceId: string }) => String((await api(path(p))).body.status);
const row = (page: Page, name: string) => page.locator(`tr[data-key="${pieces[name]!.space}/${pieces[name]!.pieceId}"]`);

async function openDashboard(width = 1280, height = 860, query = "") {
	const context = await browser.newContext({ viewport: { width, height } });
	const page = await context.newPage();
	const errors: string[] = [];
	page.on("pageerror", (error) => errors.push(String(error)));
	// A refused token is an expected 401; anything else logged as an error is not.
	page.on("console", (message) => message.type() === "error" && !message.text().includes("status of 401") && errors.push(message.text()));
	await page.goto(`${system.base}/${query}`);
	return { page, errors, context };
}

async function signIn(page: Page) {
	await page.fill("#token", system.adminToken);
	await page.click("#login button[type=submit]");
	await page.waitForSelector("#board:not([hidden])");
	// Polled from here: the page's CSP (no eval) rules out page.waitForFunction.
	await expect.poll(() => page.textContent("#message"), { timeout: 20_000 }).toMatch(/^Updated/);
}

beforeAll(async () => {
	mkdirSync(SCREENSHOTS, { recursive: true });
	system = await startSystem(PORT);
	browser = await chromium.launch({
		executablePath: CHROMIUM,
		// This machine has no network but the registries: keep Chromium from calling home.
		args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
	});
	// One piece in each state the dashboard colours, as the reference runtime's examples give them.
	await Promise.all([register("ok", "counter"), register("ok2", "counter"), register("failing", "fail"), register("pending", "unavailable"), register("off", "counter")]);
	await until(async () => (await status(pieces.ok!)) === "Success" && (await status(pieces.off!)) === "Success", "the counter pieces' first runs");
	await until(async () => (await status(pieces.failing!)).startsWith("example failure"), "the failing piece's first run");
	await until(async () => (await status(pieces.pending!)).startsWith("Runtime unavailable"), "the unavailable piece's first run");
	await new Promise((resolve) => setTimeout(resolve, 1_000));
	expect((await api(path(pieces.off!), { method: "PATCH", body: JSON.stringify({ enabled: false }) })).status).toBe(200);
}, 240_000);

afterAll(async () => {
	await browser?.close();
	await system?.stop();
});

describe("the dashboard, in Chromium against npm start", () => {
	it("asks for the token, says when it is wrong, and keeps it for the tab only", async () => {
		const { page, errors, context } = await openDashboard();
		// The page tries the API first (behind Cloudflare Access it needs no token): its 401 brings the form, with no complaint.
		await page.waitForSelector("#login:not([hidden])");
		expect(await page.isVisible("#login-error")).toBe(false);
		expect(await page.isVisible("#sign-out")).toBe(false);
		await page.screenshot({ path: `${SCREENSHOTS}/login.png` });
		await page.fill("#token", "not-the-token");
		await page.click("#login button[type=submit]");
		await page.waitForSelector("#login-error:not([hidden])");
		expect(await page.textContent("#login-error")).toBe("Wrong admin token.");
		expect(await page.evaluate(() => sessionStorage.getItem("bg-admin-token"))).toBeNull();

		await signIn(page);
		expect(await page.evaluate(() => sessionStorage.getItem("bg-admin-token"))).toBe(system.adminToken);
		// Reloading the tab keeps it; a new tab (a new browsing context) asks again.
		await page.reload();
		await page.waitForSelector("#board:not([hidden])");
		const other = await context.newPage();
		await other.goto(system.base);
		await other.waitForSelector("#login:not([hidden])");
		expect(errors).toEqual([]);
		await context.close();
	});

	it("lists every piece with its state, counts and the last tick", async () => {
		await fetch(`${system.base}/cdn-cgi/local/scheduled?cron=*+*+*+*+*`);
		const { page, errors, context } = await openDashboard();
		await signIn(page);
		expect(await page.locator("#pieces tbody tr").count()).toBe(5);
		const counts = Object.fromEntries(await page.$$eval("[data-count]", (nodes) => nodes.map((n) => [(n as HTMLElement).dataset.count, n.textContent])));
		expect(counts).toEqual({ total: "5", enabled: "4", failing: "1", disabled: "1" });
		expect(await page.textContent("#tick")).toMatch(/^Last tick .*dispatched of \d+ listed/);
		for (const [name, state, text] of [
			["ok", "ok", "Success"],
			["failing", "failing", "example failure"],
			["pending", "pending", "Runtime unavailable for"],
			["off", "disabled", "Disabled via UI"],
		] as const) {
			expect(await row(page, name).getAttribute("data-state")).toBe(state);
			expect(await row(page, name).locator(".status").textContent()).toContain(text);
		}
		// Short ids, the full one on hover.
		const pieceCell = row(page, "ok").locator(".piece");
		expect(await pieceCell.getAttribute("title")).toBe(pieces.ok!.pieceId);
		expect((await pieceCell.textContent())!.length).toBeLessThan(pieces.ok!.pieceId.length);
		// A steady piece records its runs every heartbeat: "every minute", the recorded time on hover.
		expect(await row(page, "ok").locator(".last-run").textContent()).toMatch(/ago|now|every minute/);
		expect(await row(page, "ok").locator(".last-run").getAttribute("title")).toMatch(/\d/);
		expect(await row(page, "failing").locator(".failures").textContent()).toBe("1");
		// Last attempt and last success apart: a piece that only ever failed was attempted, never succeeded.
		expect(await row(page, "failing").locator(".last-run").textContent()).toMatch(/ago|now/);
		expect(await row(page, "failing").locator(".last-success").textContent()).toBe("never");
		// Each row's strip of recorded runs, coloured by outcome.
		expect(await row(page, "failing").locator(".recent .mark").last().getAttribute("data-outcome")).toBe("f");
		expect(await row(page, "ok").locator(".recent .mark").last().getAttribute("data-outcome")).toBe("s");
		// The chart of the last hour: the tick's runs, and the failing piece.
		const { lastHour } = (await api("/api/stats")).body as { lastHour: { dispatched: number } };
		expect(lastHour.dispatched).toBeGreaterThanOrEqual(1);
		expect(Number(await page.getAttribute("#chart", "data-runs"))).toBe(lastHour.dispatched);
		expect(Number(await page.getAttribute("#chart", "data-failed"))).toBeGreaterThanOrEqual(1);
		expect(await page.locator("#chart rect.failing[height]:not([height='0'])").count()).toBeGreaterThanOrEqual(1);
		// Statuses show their times relative, the whole text on hover.
		const pendingStatus = row(page, "pending").locator(".status");
		expect(await pendingStatus.textContent()).toMatch(/^Runtime unavailable for \d+ (second|minute)s?: /);
		expect(await pendingStatus.getAttribute("title")).toMatch(/^Runtime unavailable since \d{4}-\d\d-\d\dT/);
		await page.screenshot({ path: `${SCREENSHOTS}/dashboard.png`, fullPage: true });
		expect(errors).toEqual([]);
		await context.close();
	});

	it("follows the list cursor, searches, filters and sorts", async () => {
		const { page, context } = await openDashboard(1280, 860, "?listPage=2");
		await signIn(page);
		// Three list requests of two pieces each: all five are there.
		expect(await page.locator("#pieces tbody tr").count()).toBe(5);
		await page.fill("#search", pieces.failing!.pieceId.slice(5, 15));
		expect(await page.locator("#pieces tbody tr").count()).toBe(1);
		await page.fill("#search", "");
		await page.selectOption("#integration-filter", "counter");
		expect(await page.locator("#pieces tbody tr").count()).toBe(3);
		await page.selectOption("#integration-filter", "");
		await page.selectOption("#space-filter", pieces.pending!.space);
		expect(await page.locator("#pieces tbody tr").getAttribute("data-state")).toBe("pending");
		await page.selectOption("#space-filter", "");
		await page.selectOption("#state-filter", "ok");
		expect(await page.locator("#pieces tbody tr").count()).toBe(2);
		await page.selectOption("#state-filter", "");
		// Sorted by status: failing first; again: reversed.
		await page.click('[data-sort="status"]');
		const first = () => page.locator("#pieces tbody tr").first().getAttribute("data-state");
		const afterOne = await first();
		await page.click('[data-sort="status"]');
		expect([afterOne, await first()].sort()).toEqual(["failing", "ok"]);
		await context.close();
	});

	it("disables, enables, runs now and deletes, updating the row each time", async () => {
		const { page, errors, context } = await openDashboard();
		await signIn(page);
		const ok2 = row(page, "ok2");
		await ok2.locator('[data-action="toggle"]').click();
		await expect.poll(() => ok2.getAttribute("data-state")).toBe("disabled");
		expect(await ok2.locator('[data-action="toggle"]').textContent()).toBe("Enable");
		expect(await ok2.locator('[data-action="run"]').isDisabled()).toBe(true);
		expect(await status(pieces.ok2!)).toBe("Disabled via UI");

		await new Promise((resolve) => setTimeout(resolve, 1_000));
		await ok2.locator('[data-action="toggle"]').click();
		await expect.poll(() => ok2.locator(".status").textContent()).toBe("Initializing...");
		expect(await ok2.getAttribute("data-state")).toBe("pending");

		await new Promise((resolve) => setTimeout(resolve, 1_000));
		await ok2.locator('[data-action="run"]').click();
		await expect.poll(() => page.textContent("#message")).toMatch(/^Run of .* queued \(manual:/);
		await until(async () => (await status(pieces.ok2!)) === "Success", "the run-now");
		await page.click("#refresh");
		await expect.poll(() => ok2.getAttribute("data-state")).toBe("ok");

		// Delete asks first, in the page; Cancel keeps the piece, Delete removes it.
		await ok2.locator('[data-action="delete"]').click();
		await page.waitForSelector("#confirm[open]");
		expect(await page.textContent("#confirm-text")).toContain(pieces.ok2!.pieceId);
		await page.screenshot({ path: `${SCREENSHOTS}/confirm.png` });
		await page.click('#confirm button[value="cancel"]');
		expect(await page.isVisible("#confirm")).toBe(false);
		expect(await ok2.count()).toBe(1);
		await ok2.locator('[data-action="delete"]').click();
		await page.click('#confirm button[value="confirm"]');
		await expect.poll(() => ok2.count()).toBe(0);
		expect((await api(path(pieces.ok2!))).status).toBe(404);
		expect(await page.textContent('[data-count="total"]')).toBe("4");
		expect(errors).toEqual([]);
		await context.close();
	});

	it("shows a piece's recent runs", async () => {
		const { page, context } = await openDashboard();
		await signIn(page);
		await row(page, "failing").locator(".piece").click();
		await page.waitForSelector("#detail[open]");
		expect(await page.textContent("#detail-title")).toBe(pieces.failing!.pieceId);
		const runs = page.locator("#history tbody tr");
		expect(await runs.count()).toBeGreaterThanOrEqual(1);
		expect(await runs.first().getAttribute("data-outcome")).toBe("failure");
		expect(await runs.first().textContent()).toContain("example failure: the fail piece raised an error");
		await page.screenshot({ path: `${SCREENSHOTS}/detail.png` });
		await page.click("#detail button[type=submit]");
		expect(await page.isVisible("#detail")).toBe(false);
		// An admin's action sits among the runs: the piece disabled at the start, by the admin token.
		await row(page, "off").locator(".piece").click();
		await page.waitForSelector("#detail[open]");
		const action = page.locator('#history tbody tr[data-outcome="admin"]').first();
		expect(await action.textContent()).toMatch(/disabled by an admin—by admin token [0-9a-f]{8}$/);
		await page.click("#detail button[type=submit]");
		await context.close();
	});

	it("refreshes itself, keeping focus and an open dialog, and says when it did", async () => {
		const { page, errors, context } = await openDashboard(1280, 860, "?refresh=2");
		await signIn(page);
		await expect.poll(() => page.textContent("#updated")).toMatch(/^Updated .* · refreshes every 2 s$/);
		const before = await page.locator("#pieces tbody tr").count();
		// A control keeps its focus across refreshes.
		await row(page, "ok").locator('[data-action="run"]').focus();
		const late = await register("late", "counter");
		await expect.poll(() => page.locator("#pieces tbody tr").count(), { timeout: 15_000 }).toBe(before + 1);
		expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.action)).toBe("run");
		expect(await page.evaluate(() => document.activeElement?.closest("tr")?.dataset.key)).toBe(`${pieces.ok!.space}/${pieces.ok!.pieceId}`);
		// While a dialog is open, nothing under it changes; once closed, the page catches up.
		await row(page, "late").locator(".piece").click();
		await page.waitForSelector("#detail[open]");
		await register("later", "counter");
		await new Promise((resolve) => setTimeout(resolve, 5_000));
		expect(await page.isVisible("#detail")).toBe(true);
		expect(await page.locator("#pieces tbody tr").count()).toBe(before + 1);
		await page.keyboard.press("Escape");
		await expect.poll(() => page.locator("#pieces tbody tr").count(), { timeout: 15_000 }).toBe(before + 2);
		expect(late.pieceId).toMatch(/^fid1:/);
		expect(errors).toEqual([]);
		await context.close();
	});

	it("works from the keyboard: detail, and delete's confirmation, with Enter and Escape", async () => {
		const { page, context } = await openDashboard();
		await signIn(page);
		await row(page, "pending").locator(".piece").focus();
		await page.keyboard.press("Enter");
		await page.waitForSelector("#detail[open]");
		await page.keyboard.press("Escape");
		expect(await page.isVisible("#detail")).toBe(false);
		// Focus goes back where it was.
		expect(await page.evaluate(() => document.activeElement?.closest("tr")?.dataset.key)).toBe(`${pieces.pending!.space}/${pieces.pending!.pieceId}`);
		await row(page, "pending").locator('[data-action="delete"]').focus();
		await page.keyboard.press("Enter");
		await page.waitForSelector("#confirm[open]");
		// Cancel is the default: Escape or Enter keeps the piece.
		expect(await page.evaluate(() => (document.activeElement as HTMLButtonElement | null)?.value)).toBe("cancel");
		await page.keyboard.press("Escape");
		expect(await page.isVisible("#confirm")).toBe(false);
		expect(await row(page, "pending").count()).toBe(1);
		await context.close();
	});

	it("fits a phone-sized screen", async () => {
		const { page, context } = await openDashboard(390, 844);
		await signIn(page);
		expect(await page.isVisible("#pieces thead")).toBe(false);
		expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
		expect(await row(page, "failing").locator('[data-action="run"]').isVisible()).toBe(true);
		await page.screenshot({ path: `${SCREENSHOTS}/phone.png`, fullPage: true });
		await context.close();
	});

	it("loads nothing from outside the Worker", async () => {
		const { page, context } = await openDashboard();
		const requested: string[] = [];
		page.on("request", (request) => requested.push(request.url()));
		await page.reload();
		await signIn(page);
		expect(requested.length).toBeGreaterThan(0);
		expect(requested.filter((url) => !url.startsWith(system.base))).toEqual([]);
		const response = await page.goto(system.base);
		expect(response?.headers()["content-security-policy"]).toContain("default-src 'self'");
		await context.close();
	});
});
