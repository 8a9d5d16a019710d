import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module of the start script, without types.
import { formatLine, shortId } from "../../scripts/local-log.mjs";
// @ts-expect-error: as above.
import { PASSED_THROUGH, SET_BY_START } from "../../scripts/worker-settings.mjs";

const exec = promisify(execFile);

describe("npm start checks its ports before it starts anything", () => {
	let holder: Server | undefined;
	afterEach(() => void holder?.close());

	it.each([
		[0, "PORT, the scheduler"],
		[1, "RUNTIME_PORT, the reference runtime"],
		[1000, "PORT + 1000, the scheduler's inspector"],
	])("names the port at PORT + %i and its holder, and exits 1", async (offset, what) => {
		const port = 18_400 + Math.floor(Math.random() * 400);
		holder = createServer();
		await new Promise<void>((resolve) => holder!.listen(port + offset, "127.0.0.1", resolve));
		const started = Date.now();
		const result = await exec(process.execPath, ["scripts/start.mjs"], { env: { ...process.env, PORT: String(port), TICK_SECONDS: "0" } }).catch((error) => error as { code: number; stderr: string });
		expect(result).toMatchObject({ code: 1 });
		const { stderr } = result as { stderr: string };
		expect(stderr).toContain(`port ${port + offset} (${what}) is taken by pid ${process.pid} (`);
		expect(stderr).toContain("start on other ports: PORT=");
		// Refused before any wrangler started.
		expect(Date.now() - started).toBeLessThan(10_000);
	});
});

describe("npm start's output", () => {
	const piece = "did:key:z6Mkm5EjoZz51YUD7PyVpBwaFtLBKabNCPGkpMy8X5wcqp5a/fid1:EpHUPrEx4_GNUbipw3-FMTahov29ELSZgnu18DKRYfm";

	it("leaves out wrangler's start-up noise and the requests that went well", () => {
		for (const line of ["Your Worker has access to the following bindings:", 'env.BASE_PATH ("(hidden)")                                       Environment Variable      local', "❓ Your types might be out of date. Re-run `wrangler types` to ensure your types are correct.", "⎔ Starting local server...", "[wrangler:info] POST /api/integrations/bg 200 OK (33ms)", "[wrangler:info] QUEUE bg-piece-runs 1/1 (29ms)", 'A header value for "CF-KV-Metadata" contains non-ASCII characters: "{"status":"…"}"', ""]) {
			expect(formatLine(line), line).toBeNull();
		}
		expect(formatLine("[wrangler:info] GET /api/nothing 404 Not Found (3ms)")).toBe("[wrangler:info] GET /api/nothing 404 Not Found (3ms)");
	});

	it("prints one short line per run, with the outcome, the piece, the duration and the error", () => {
		const success = formatLine(`Successfully executed piece ${piece}`) as string;
		expect(success).toMatch(/^\d\d:\d\d:\d\d ✓ success +z6Mkm5Ej…cqp5a\/fid1:EpHU…KRYfm +Successfully executed piece$/u);
		const failure = formatLine(JSON.stringify({ event: "run", outcome: "failure", piece, durationMs: 1500, failures: 2, kind: "manual", error: "boom" })) as string;
		expect(failure).toMatch(/^\d\d:\d\d:\d\d ✗ failure 2\/3 z6Mkm5Ej…cqp5a\/fid1:EpHU…\S+ +1500 ms \(manual\): boom$/u);
		expect(failure.length).toBeLessThan(100);
	});

	it("prints an admin change (the audit trail) as who did what, and the status before → after", () => {
		const disabled = formatLine(JSON.stringify({ event: "admin-change", action: "disable", by: "access:alice@example.com", piece, changes: { status: ["Success", "Disabled via UI"], disabledAt: [0, 1] } }));
		expect(disabled).toMatch(/^\d\d:\d\d:\d\d   disable     z6Mkm5Ej…cqp5a\/fid1:EpHU…KRYfm  by access:alice@example.com \(Success → Disabled via UI\)$/u);
		const deleted = formatLine(JSON.stringify({ event: "admin-change", action: "delete", by: "token:0123abcd", piece, changes: { status: ["Success", null] } }));
		expect(deleted).toMatch(/delete +\S+  by token:0123abcd \(Success → deleted\)$/u);
		const ran = formatLine(JSON.stringify({ event: "admin-change", action: "run-now", by: "token:0123abcd", piece, changes: {}, runId: "manual:1:x" }));
		expect(ran).toMatch(/run-now +\S+  by token:0123abcd$/u);
	});

	it("shortens ids, keeps other events on one line, and passes anything else through", () => {
		expect(shortId("did:key:z6Mkm5EjoZz51YUD7PyVpBwaFtLBKabNCPGkpMy8X5wcqp5a")).toBe("z6Mkm5Ej…cqp5a");
		expect(formatLine(JSON.stringify({ event: "run-crashed", level: "error", error: "TypeError: x", piece }), "[x] ")).toMatch(/^\[x\] \d\d:\d\d:\d\d ! run-crashed +error=TypeError: x piece=z6Mkm5Ej…cqp5a\//u);
		expect(formatLine("something wrangler says")).toBe("something wrangler says");
	});
});

describe("every Worker variable and secret the README lists can be set for npm start", () => {
	it("is set by npm start or passed through from the environment", () => {
		const readme = readFileSync("README.md", "utf8");
		const table = readme.slice(readme.indexOf("## Configuration"), readme.indexOf("## Deploying"));
		const names = [...table.matchAll(/^\| `([A-Z_]+)` \| (variable|secret)/gm)].map((match) => match[1]);
		expect(names.length).toBeGreaterThan(10);
		const settable = new Set([...SET_BY_START, ...PASSED_THROUGH]);
		expect(names.filter((name) => !settable.has(name))).toEqual([]);
	});
});
