import { execFile, spawn } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey, sign } from "node:crypto";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

const exec = promisify(execFile);

/** Runs `npm run cli -- …` as a user would (through scripts/cli.mjs), never throwing. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
	try {
		const { stdout, stderr } = await exec(process.execPath, ["scripts/cli.mjs", ...args], { env: { ...process.env, ADMIN_TOKEN: "", REGISTRATION_TOKEN: "", BG_URL: "", PORT: "", OPERATOR_PASS: "", IDENTITY: "", CF_ACCESS_CLIENT_ID: "", CF_ACCESS_CLIENT_SECRET: "", ...env } });
		return { code: 0, stdout, stderr };
	} catch (error) {
		const failed = error as { code: number; stdout: string; stderr: string };
		return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
	}
}

/*
 * Common Fabric's derivation, written here independently of the CLI's (which uses Web
 * Crypto through src/identity): Node's own crypto, from the definitions in the brief.
 */
const PKCS8_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");
const keyOfSeed = (seed: Buffer) => createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: "der", type: "pkcs8" });
const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest();
/** base58btc (Bitcoin alphabet), written here rather than taken from the library the code uses. */
function base58(bytes: Buffer): string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
	let n = BigInt(`0x${bytes.toString("hex") || "0"}`);
	let out = "";
	while (n > 0n) {
		out = alphabet[Number(n % 58n)] + out;
		n /= 58n;
	}
	for (const byte of bytes) {
		if (byte !== 0) break;
		out = `1${out}`;
	}
	return out;
}

function didOf(key: ReturnType<typeof createPrivateKey>): string {
	const publicKey = Buffer.from(createPublicKey(key).export({ format: "jwk" }).x!, "base64url");
	return `did:key:z${base58(Buffer.concat([Buffer.from([0xed, 0x01]), publicKey]))}`;
}
function expectedSpaceDid(name: string, passphrase = "common user"): string {
	const root = keyOfSeed(sha256(passphrase));
	return didOf(keyOfSeed(sha256(sign(null, Buffer.from(name, "utf8"), root))));
}

describe("space-did: the DID of a space name, as Common Fabric derives it", () => {
	it.each(["my space", "", "ünïcödé 😀", "a".repeat(300)])("agrees with an independent derivation for %j", async (name) => {
		const result = await cli(["space-did", name]);
		expect(result.code).toBe(0);
		expect(result.stdout.trim()).toBe(expectedSpaceDid(name));
		expect(result.stdout.trim()).toMatch(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/);
	});

	it("gives the DID an independent Python implementation computed for a known name", async () => {
		expect((await cli(["space-did", "my space"])).stdout.trim()).toBe("did:key:z6Mkm5EjoZz51YUD7PyVpBwaFtLBKabNCPGkpMy8X5wcqp5a");
	});

	it("takes another passphrase", async () => {
		const result = await cli(["space-did", "home", "--passphrase", "another user"]);
		expect(result.stdout.trim()).toBe(expectedSpaceDid("home", "another user"));
		expect(result.stdout.trim()).not.toBe(expectedSpaceDid("home"));
	});
});

describe("Worker commands", () => {
	/** A FAKE scheduler Worker: records each request and answers with `reply` (the real routes are tested in workerd). */
	const seen: { method: string; url: string; authorization?: string; accessClient?: string; accessSecret?: string; body: string }[] = [];
	let reply: (request: IncomingMessage) => { status: number; body: unknown } = () => ({ status: 200, body: { success: true } });
	let server: Server;
	let url: string;

	beforeAll(async () => {
		server = createServer(async (request, response) => {
			let body = "";
			for await (const chunk of request) body += chunk;
			const access = { accessClient: request.headers["cf-access-client-id"] as string | undefined, accessSecret: request.headers["cf-access-client-secret"] as string | undefined };
			seen.push({ method: request.method!, url: request.url!, authorization: request.headers.authorization, ...access, body });
			const { status, body: answer } = reply(request);
			response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(answer));
		});
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	});
	afterAll(() => new Promise((resolve) => server.close(resolve)));

	const SPACE = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
	const PIECE = "fid1:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
	const last = () => seen[seen.length - 1]!;

	it("register --space-name derives the space and posts the seed's body", async () => {
		const result = await cli(["register", "--space-name", "my space", "--piece", PIECE, "--integration", "gmail", "--url", url]);
		expect(result.code).toBe(0);
		expect(last()).toMatchObject({ method: "POST", url: "/api/integrations/bg" });
		expect(JSON.parse(last().body)).toEqual({ space: expectedSpaceDid("my space"), pieceId: PIECE, integration: "gmail" });
	});

	it.each([
		[["status", SPACE, PIECE], "GET", `/api/integrations/bg/${encodeURIComponent(SPACE)}/${encodeURIComponent(PIECE)}`, undefined],
		[["enable", SPACE, PIECE], "PATCH", `/api/integrations/bg/${encodeURIComponent(SPACE)}/${encodeURIComponent(PIECE)}`, { enabled: true }],
		[["disable", SPACE, PIECE], "PATCH", `/api/integrations/bg/${encodeURIComponent(SPACE)}/${encodeURIComponent(PIECE)}`, { enabled: false }],
		[["delete", SPACE, PIECE], "DELETE", `/api/integrations/bg/${encodeURIComponent(SPACE)}/${encodeURIComponent(PIECE)}`, undefined],
		[["run", SPACE, PIECE], "POST", `/api/integrations/bg/${encodeURIComponent(SPACE)}/${encodeURIComponent(PIECE)}/run`, undefined],
		[["list", "--space", SPACE, "--limit", "5"], "GET", `/api/integrations/bg?space=${encodeURIComponent(SPACE)}&limit=5`, undefined],
	] as const)("%j calls %s %s with the admin token", async (args, method, path, body) => {
		const result = await cli([...args, "--url", url], { ADMIN_TOKEN: "tok" });
		expect(result.code).toBe(0);
		expect(last()).toMatchObject({ method, url: path });
		if (args[0] !== "status") expect(last().authorization).toBe("Bearer tok");
		if (body) expect(JSON.parse(last().body)).toEqual(body);
	});

	it("signs in with a Cloudflare Access service token when one is set, and then needs no ADMIN_TOKEN", async () => {
		const serviceToken = { CF_ACCESS_CLIENT_ID: "2f8e1c3b.access", CF_ACCESS_CLIENT_SECRET: "s3cret" };
		const result = await cli(["disable", SPACE, PIECE, "--url", url], serviceToken);
		expect(result.code).toBe(0);
		expect(last()).toMatchObject({ method: "PATCH", accessClient: "2f8e1c3b.access", accessSecret: "s3cret", authorization: undefined });
		// With both, both go: Access checks its headers, the Worker the token.
		await cli(["list", "--url", url], { ...serviceToken, ADMIN_TOKEN: "tok" });
		expect(last()).toMatchObject({ accessClient: "2f8e1c3b.access", authorization: "Bearer tok" });
		// Half a service token is none.
		const half = await cli(["disable", SPACE, PIECE, "--url", url], { CF_ACCESS_CLIENT_ID: "2f8e1c3b.access" });
		expect(half.code).toBe(2);
		expect(half.stderr).toContain("CF_ACCESS_CLIENT_SECRET");
	});

	it("list --all follows the cursor to the end", async () => {
		reply = (request) => (request.url!.includes("cursor=c1") ? { status: 200, body: { success: true, pieces: [{ pieceId: "b" }], cursor: null } } : { status: 200, body: { success: true, pieces: [{ pieceId: "a" }], cursor: "c1" } });
		const result = await cli(["list", "--all", "--json", "--url", url], { ADMIN_TOKEN: "tok" });
		reply = () => ({ status: 200, body: { success: true } });
		expect(JSON.parse(result.stdout).pieces).toEqual([{ pieceId: "a" }, { pieceId: "b" }]);
	});

	it("exit 1 with the Worker's error when it refuses, and a hint", async () => {
		reply = () => ({ status: 401, body: { success: false, error: "missing or wrong admin token" } });
		const result = await cli(["disable", SPACE, PIECE, "--url", url], { ADMIN_TOKEN: "wrong" });
		reply = () => ({ status: 200, body: { success: true } });
		expect(result.code).toBe(1);
		expect(result.stderr).toContain("HTTP 401: missing or wrong admin token");
		expect(result.stderr).toContain("hint: ADMIN_TOKEN must be the Worker's admin token");
	});

	it("finds the Worker through BG_URL, else npm start's PORT, when --url is not given", async () => {
		await cli(["status", SPACE, PIECE], { BG_URL: `${url}/prefixed` });
		expect(last()).toMatchObject({ method: "GET", url: `/prefixed/api/integrations/bg/${encodeURIComponent(SPACE)}/${encodeURIComponent(PIECE)}` });
		const port = new URL(url).port;
		const before = seen.length;
		await cli(["status", SPACE, PIECE], { BG_URL: "", PORT: port });
		expect(seen.length).toBe(before + 1);
		expect((await cli(["status", SPACE, PIECE], { BG_URL: "ftp://x" })).stderr).toContain('BG_URL must be an http(s) URL, not "ftp://x"');
	});

	it("prints pieces for people: a table with short ids and relative times; --json as the Worker answered", async () => {
		const now = Date.now();
		const listed = { space: SPACE, pieceId: PIECE, integration: "gmail", status: "boom", failures: 2, disabledAt: 0, lastRun: now - 5 * 60_000, lastSuccessAt: 0, nextRunAt: now + 60_000, createdAt: now - 86_400_000, lastRunMaxLagMs: 0 };
		reply = () => ({ status: 200, body: { success: true, pieces: [listed, { ...listed, pieceId: PIECE.replace("Q", "R"), status: "Disabled: boom", disabledAt: now }], cursor: "next-page" } });
		const table = await cli(["list", "--url", url], { ADMIN_TOKEN: "tok" });
		const lines = table.stdout.trim().split("\n");
		expect(lines[0]).toMatch(/^STATE +SPACE +PIECE +INTEGRATION +LAST ATTEMPT +LAST SUCCESS +FAILURES +STATUS$/);
		expect(lines[1]).toMatch(/^failing +did:key:z6MkhaXg…2doK +fid1:abcdefgh…NOPQ +gmail +5 min ago +never +2 +boom$/);
		expect(lines[2]).toMatch(/^disabled +.*Disabled: boom$/);
		expect(lines[3]).toBe("more: --cursor next-page (or --all)");
		reply = () => ({ status: 200, body: listed });
		const detail = await cli(["status", SPACE, PIECE, "--url", url]);
		expect(detail.stdout).toMatch(/^last attempt +5 min ago \(\d{4}-\d\d-\d\dT/m);
		expect(detail.stdout).toMatch(/^last success +never$/m);
		expect(JSON.parse((await cli(["status", SPACE, PIECE, "--json", "--url", url])).stdout)).toEqual(listed);
		reply = () => ({ status: 200, body: { success: true, message: "Piece x disabled" } });
		expect((await cli(["disable", SPACE, PIECE, "--url", url], { ADMIN_TOKEN: "tok" })).stdout.trim()).toBe("Piece x disabled");
		reply = () => ({ status: 200, body: { success: true } });
	});

	it("doctor checks a deployment end to end and exits 1 on any problem, saying what to fix", async () => {
		const healthy = { status: "ok", service: "bg-piece-scheduler", did: "did:key:z6Mkx", runtime: { via: "url", protocol: 2, state: "ok", since: null, reason: null }, lastTick: { scheduledTime: Date.now() - 30_000, dispatched: 3, listed: 4 }, problems: [], notes: [] };
		reply = (request) => (request.url === "/api/health" ? { status: 200, body: healthy } : request.headers.authorization === "Bearer tok" ? { status: 200, body: { success: true } } : { status: 401, body: { error: "wrong" } });
		const good = await cli(["doctor", "--url", url], { ADMIN_TOKEN: "tok" });
		expect(good.code).toBe(0);
		expect(good.stdout.trim().split("\n").every((line) => line.startsWith("✓"))).toBe(true);
		expect(good.stdout).toContain("✓ the admin token is accepted");
		const wrongToken = await cli(["doctor", "--url", url], { ADMIN_TOKEN: "nope" });
		expect(wrongToken.code).toBe(1);
		expect(wrongToken.stdout).toContain("✗ the admin token is refused (HTTP 401)\n    → ADMIN_TOKEN here must be the Worker's secret of that name");
		// An Access service token instead of the admin token: what Access lets through is the Worker's to judge.
		reply = (request) => (request.url === "/api/health" ? { status: 200, body: healthy } : request.headers["cf-access-client-secret"] === "s3cret" ? { status: 200, body: { success: true } } : { status: 403, body: { error: "not an admin" } });
		const viaAccess = await cli(["doctor", "--url", url], { CF_ACCESS_CLIENT_ID: "2f8e1c3b.access", CF_ACCESS_CLIENT_SECRET: "s3cret" });
		expect(viaAccess.code).toBe(0);
		expect(viaAccess.stdout).toContain("✓ the Access service token is accepted as an admin");
		const refusedAccess = await cli(["doctor", "--url", url], { CF_ACCESS_CLIENT_ID: "2f8e1c3b.access", CF_ACCESS_CLIENT_SECRET: "other" });
		expect(refusedAccess.stdout).toContain("✗ the Access service token is refused (HTTP 403)");
		const stale = { ...healthy, status: "degraded", problems: ["no tick since …"], lastTick: { ...healthy.lastTick, scheduledTime: Date.now() - 10 * 60_000 }, runtime: { ...healthy.runtime, state: "unavailable", since: Date.now(), reason: "runtime unreachable" } };
		reply = (request) => (request.url === "/api/health" ? { status: 200, body: stale } : { status: 200, body: {} });
		const bad = await cli(["doctor", "--url", url], { ADMIN_TOKEN: "tok" });
		expect(bad.code).toBe(1);
		expect(bad.stdout).toContain("✗ health: degraded");
		expect(bad.stdout).toContain("✗ no tick since …");
		expect(bad.stdout).toMatch(/✗ the runtime has been unavailable since .*: runtime unreachable/);
		expect(bad.stdout).toMatch(/✗ the last tick was at /);
		reply = () => ({ status: 404, body: { success: false, error: "no such route" } });
		const elsewhere = await cli(["doctor", "--url", url]);
		expect(elsewhere.code).toBe(1);
		expect(elsewhere.stdout).toContain("not as this scheduler");
		reply = () => ({ status: 200, body: { success: true } });
	});

	it("exit 2 with one line of error and a hint (not the whole usage) for a wrong call, no command, or an admin command without ADMIN_TOKEN", async () => {
		for (const args of [["bogus"], ["status", SPACE], ["register", "--piece", PIECE], ["space-did"], ["list", "--nope"], []]) {
			const result = await cli([...args, "--url", url]);
			expect(result.code, args.join(" ")).toBe(2);
			expect(result.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^error: /), "  (npm run cli -- help: every command and option)"]);
			expect(result.stdout).toBe("");
		}
		const noToken = await cli(["list", "--url", url]);
		expect(noToken.code).toBe(2);
		expect(noToken.stderr).toContain("set ADMIN_TOKEN");
	});

	it("exit 2 for a --url that is not an http(s) URL", async () => {
		for (const bad of ["notaurl", "ftp://host", ""]) {
			const result = await cli(["status", SPACE, PIECE, "--url", bad]);
			expect(result.code, bad).toBe(2);
			expect(result.stderr).toContain("--url must be an http(s) URL");
		}
	});

	it("exit 3 when the Worker cannot be reached", async () => {
		const result = await cli(["status", SPACE, PIECE, "--url", "http://127.0.0.1:9"]);
		expect(result.code).toBe(3);
		expect(result.stderr).toContain("cannot reach http://127.0.0.1:9");
	});

	it("service-did prints the DID the Worker will sign as, from OPERATOR_PASS or IDENTITY, before any deploy", async () => {
		const fromPass = await cli(["service-did"], { OPERATOR_PASS: "a secret pass" });
		expect(fromPass.code).toBe(0);
		expect(fromPass.stdout.trim()).toBe(didOf(keyOfSeed(sha256("a secret pass"))));
		expect(fromPass.stderr).toContain("(from OPERATOR_PASS)");
		const seed = sha256("some key");
		const pem = keyOfSeed(seed).export({ format: "pem", type: "pkcs8" }).toString();
		expect((await cli(["service-did"], { IDENTITY: pem, OPERATOR_PASS: "ignored" })).stdout.trim()).toBe(didOf(keyOfSeed(seed)));
		expect((await cli(["service-did"], { IDENTITY: "not a key" })).code).toBe(2);
	});

	it("help prints the usage and exits 0", async () => {
		const result = await cli(["help"]);
		expect(result.code).toBe(0);
		expect(result.stdout).toContain("space-did <name>");
	});
});

/** The same, with `input` on standard input. */
function cliWithInput(args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> {
	return new Promise((resolve) => {
		const child = spawn(process.execPath, ["scripts/cli.mjs", ...args], { env: { ...process.env, ADMIN_TOKEN: "tok" } });
		let stdout = "";
		let stderr = "";
		child.stdout.on("data", (chunk) => (stdout += chunk));
		child.stderr.on("data", (chunk) => (stderr += chunk));
		child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
		child.stdin.end(input);
	});
}

const DAY = 86_400_000;
const NOW = Date.now();
const ROW_SPACE = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK";
/** A valid fid1: id, distinct per n. */
const pieceId = (n: number) => `fid1:${String(n).padStart(43, "A")}`;

/** A row of the replaced service's registry array. */
function row(n: number, overrides: Record<string, unknown> = {}): Record<string, unknown> {
	return { space: ROW_SPACE, pieceId: pieceId(n), integration: "gmail", createdAt: NOW - 9 * DAY, updatedAt: NOW - DAY, disabledAt: 0, lastRun: NOW - 60_000, status: "Success", ...overrides };
}

/** `cli` with the admin token set, as the admin commands need. */
const adminCli = (args: string[], env: Record<string, string> = { ADMIN_TOKEN: "tok" }) => cli(args, env);

interface SeenRequest {
	method: string;
	url: string;
	authorization?: string;
	body: string;
	at: number;
}

/**
 * A FAKE scheduler Worker (the real import route is tested in workerd, test/api/import.test.ts):
 * records each request; by default answers an import as the Worker would for rows that say
 * what to answer: `status: "bad"` is refused, `integration: "flaky"` answers retry the first
 * time that piece is sent, anything else is created.
 */
describe("export and import (admin)", () => {
	const seen: SeenRequest[] = [];
	const sentBefore = new Set<string>();
	let reply: (request: IncomingMessage, body: string) => { status: number; body: unknown; headers?: Record<string, string> };
	let server: Server;
	let url: string;
	let dir: string;

	function importAnswer(body: string) {
		const { rows, dryRun } = JSON.parse(body) as { rows: Record<string, unknown>[]; dryRun: boolean };
		const results = rows.map((r, index) => {
			const key = `${r.space}/${r.pieceId}`;
			const first = !sentBefore.has(key);
			sentBefore.add(key);
			if (r.status === "bad") return { index, outcome: "refused", reason: "status is bad" };
			if (r.integration === "flaky" && first) return { index, outcome: "retry", reason: "written a moment ago" };
			return { index, space: r.space, pieceId: r.pieceId, outcome: "created" };
		});
		const counts = { created: 0, updated: 0, unchanged: 0, refused: 0, retry: 0 };
		for (const r of results) counts[r.outcome as keyof typeof counts]++;
		return { status: 200, body: { success: true, dryRun, results, counts } };
	}
	const defaultReply = (request: IncomingMessage, body: string) => (request.url === "/api/admin/import" ? importAnswer(body) : { status: 404, body: { success: false, error: "no such route" } });

	beforeAll(async () => {
		server = createServer(async (request, response) => {
			let body = "";
			for await (const chunk of request) body += chunk;
			seen.push({ method: request.method!, url: request.url!, authorization: request.headers.authorization, body, at: Date.now() });
			const answer = reply(request, body);
			response.writeHead(answer.status, { "content-type": "application/json", ...answer.headers }).end(JSON.stringify(answer.body));
		});
		await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
		url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
		dir = await mkdtemp(join(tmpdir(), "bg-cli-"));
	});
	afterAll(() => new Promise((resolve) => server.close(resolve)));
	beforeEach(() => {
		seen.length = 0;
		sentBefore.clear();
		reply = defaultReply;
	});

	async function file(name: string, content: unknown): Promise<string> {
		const path = join(dir, name);
		await writeFile(path, typeof content === "string" ? content : JSON.stringify(content));
		return path;
	}
	const imports = () => seen.filter((s) => s.url === "/api/admin/import").map((s) => JSON.parse(s.body) as { rows: Record<string, unknown>[]; dryRun: boolean });

	it("import: wrong calls are usage errors (exit 2), before anything is sent", async () => {
		const good = await file("good.json", [row(1)]);
		const cases: [string[], Record<string, string> | undefined, RegExp][] = [
			[["import"], undefined, /import takes one FILE/],
			[["import", good, good], undefined, /import takes one FILE/],
			[["import", join(dir, "missing.json")], undefined, /cannot read .*missing\.json/],
			[["import", await file("text.json", "not json at all")], undefined, /is not JSON .*import takes a JSON array/],
			[["import", await file("object.json", { rows: [row(1)] })], undefined, /holds JSON but not an array/],
			[["import", good], {}, /set ADMIN_TOKEN/],
			[["export", "extra"], undefined, /export takes no arguments/],
		];
		for (const [args, env, error] of cases) {
			const result = await adminCli([...args, "--url", url], env);
			expect(result.code, args.join(" ")).toBe(2);
			expect(result.stderr).toMatch(error);
			expect(result.stderr).toContain("(npm run cli -- help: every command and option)");
		}
		expect(seen).toHaveLength(0);
	});

	it("import: prints the counts and exits 0 when every row went in, with the admin token", async () => {
		const result = await adminCli(["import", await file("three.json", [row(1), row(2), row(3)]), "--url", url]);
		expect(result.code).toBe(0);
		expect(result.stdout.trim()).toBe("created 3, updated 0, unchanged 0, refused 0");
		expect(seen[0]).toMatchObject({ method: "POST", authorization: "Bearer tok" });
		expect(imports()).toEqual([{ rows: [row(1), row(2), row(3)], dryRun: false }]);
	});

	it("import: prints each refusal with its row number in the file, and exits 1", async () => {
		const rows = Array.from({ length: 250 }, (_, i) => row(i, i === 7 || i === 230 ? { status: "bad" } : {}));
		const result = await adminCli(["import", await file("many.json", rows), "--url", url]);
		expect(result.code).toBe(1);
		expect(result.stdout).toContain("row 7: status is bad\nrow 230: status is bad\n");
		expect(result.stdout).toContain("created 248, updated 0, unchanged 0, refused 2");
		// Requests of at most 100 rows, one after another, in the file's order.
		expect(imports().map((body) => body.rows.length)).toEqual([100, 100, 50]);
		expect(imports().flatMap((body) => body.rows)).toEqual(rows);
	});

	it("import --dry-run sends dryRun and says the counts are a dry run's", async () => {
		const result = await adminCli(["import", await file("dry.json", [row(1), row(2, { status: "bad" })]), "--dry-run", "--url", url]);
		expect(result.code).toBe(1);
		expect(imports().every((body) => body.dryRun === true)).toBe(true);
		expect(result.stdout).toMatch(/^dry run, nothing written: created 1, updated 0, unchanged 0, refused 1$/m);
	});

	it("import: a row answered retry is sent again, alone, at least a second later", async () => {
		const result = await adminCli(["import", await file("flaky.json", [row(1), row(2, { integration: "flaky" }), row(3)]), "--url", url]);
		expect(result.code).toBe(0);
		expect(result.stdout.trim()).toBe("created 3, updated 0, unchanged 0, refused 0");
		const bodies = imports();
		expect(bodies).toHaveLength(2);
		expect(bodies[1]!.rows).toEqual([row(2, { integration: "flaky" })]);
		const requests = seen.filter((s) => s.url === "/api/admin/import");
		expect(requests[1]!.at - requests[0]!.at).toBeGreaterThanOrEqual(1000);
	});

	it("import: a row still refused for rate after a few rounds is reported and exits 1", async () => {
		reply = (request, body) => {
			const answer = importAnswer(body);
			(answer.body.results as { outcome: string }[]).forEach((r) => (r.outcome = "retry"));
			return answer;
		};
		const result = await adminCli(["import", await file("hot.json", [row(1)]), "--url", url]);
		expect(result.code).toBe(1);
		expect(result.stdout).toMatch(/row 0: not written: .*run the import again/);
		expect(imports().length).toBeGreaterThan(2);
	}, 30_000);

	it("import: a 429 or 503 with Retry-After is waited out and the request sent again", async () => {
		let busy = 2;
		reply = (request, body) => (busy-- > 0 ? { status: busy ? 429 : 503, body: { success: false, error: "busy" }, headers: { "retry-after": "1" } } : importAnswer(body));
		const started = Date.now();
		const result = await adminCli(["import", await file("busy.json", [row(1)]), "--url", url]);
		expect(result.code).toBe(0);
		expect(imports()).toHaveLength(3);
		expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
	});

	it("import: other refusals of the whole request exit 1 with the Worker's error", async () => {
		reply = () => ({ status: 401, body: { success: false, error: "missing or wrong admin token" } });
		const result = await adminCli(["import", await file("one.json", [row(1)]), "--url", url]);
		expect(result.code).toBe(1);
		expect(result.stderr).toContain("HTTP 401: missing or wrong admin token");
	});

	it("import: rows naming the same piece in either spelling are merged, keeping the most recent", async () => {
		const older = row(1, { pieceId: `of:${pieceId(1)}`, updatedAt: NOW - 5 * DAY, lastRun: NOW - 5 * DAY, status: "old" });
		const newest = row(1, { lastRun: NOW - 1000 });
		const oldest = row(1, { updatedAt: NOW - 9 * DAY, lastRun: 0 });
		const result = await adminCli(["import", await file("dups.json", [older, row(2), newest, oldest]), "--url", url]);
		expect(result.code).toBe(0);
		expect(result.stdout).toContain("duplicates merged: 2\n");
		expect(result.stdout).toContain("created 2, updated 0, unchanged 0, refused 0");
		expect(imports()[0]!.rows).toEqual([newest, row(2)]);
	});

	it("import - reads the array from standard input", async () => {
		const result = await cliWithInput(["import", "-", "--url", url], JSON.stringify([row(1), row(2)]));
		expect(result.code).toBe(0);
		expect(result.stdout.trim()).toBe("created 2, updated 0, unchanged 0, refused 0");
	});

	/** A listed piece as the admin list answers it, with its view-only fields. */
	const listed = (n: number, overrides: Record<string, unknown> = {}) => ({
		space: ROW_SPACE,
		pieceId: pieceId(n),
		integration: "gmail",
		createdAt: 1,
		updatedAt: 2,
		disabledAt: 0,
		lastRun: 3,
		status: "Success",
		failures: 0,
		nextRunAt: 4,
		lastFailureAt: 0,
		lastSuccessAt: 3,
		enabled: true,
		lastRunMaxLagMs: 3_660_000,
		...overrides,
	});
	const exportReply = (request: IncomingMessage) => {
		if (request.url!.startsWith("/api/integrations/bg?")) {
			const query = new URL(request.url!, url).searchParams;
			return query.get("cursor") === "c1"
				? { status: 200, body: { success: true, pieces: [listed(3, { status: "Error: long…", failures: 1 })], cursor: null, complete: true } }
				: { status: 200, body: { success: true, pieces: [listed(1), listed(2, { disabledAt: 9, enabled: false, status: "Disabled via UI" })], cursor: "c1", complete: false } };
		}
		if (request.url === `/api/integrations/bg/${encodeURIComponent(ROW_SPACE)}/${encodeURIComponent(pieceId(3))}`) {
			return { status: 200, body: { ...listed(3, { status: "Error: long and complete", failures: 1 }), lastRunId: "r", history: [] } };
		}
		return { status: 404, body: { success: false, error: "no such route" } };
	};
	const exportedRow = (n: number, overrides: Record<string, unknown> = {}) => {
		const { enabled: _, lastRunMaxLagMs: __, ...rest } = listed(n, overrides);
		return rest;
	};

	it("export follows every page and prints one JSON array: the upstream fields first, our extras, no view-only fields", async () => {
		reply = exportReply;
		const result = await adminCli(["export", "--url", url]);
		expect(result.code).toBe(0);
		const rows = JSON.parse(result.stdout) as Record<string, unknown>[];
		expect(rows).toEqual([exportedRow(1), exportedRow(2, { disabledAt: 9, status: "Disabled via UI" }), exportedRow(3, { status: "Error: long and complete", failures: 1 })]);
		expect(Object.keys(rows[0]!)).toEqual(["space", "pieceId", "integration", "createdAt", "updatedAt", "disabledAt", "lastRun", "status", "failures", "nextRunAt", "lastFailureAt", "lastSuccessAt"]);
		expect(seen.every((s) => s.authorization === "Bearer tok")).toBe(true);
		expect(seen.map((s) => s.url).filter((u) => u.includes("?"))).toEqual(["/api/integrations/bg?limit=1000", "/api/integrations/bg?limit=1000&cursor=c1"]);
	});

	it("export --out writes the file and prints a one-line count", async () => {
		reply = exportReply;
		const out = join(dir, "export.json");
		const result = await adminCli(["export", "--out", out, "--url", url]);
		expect(result.code).toBe(0);
		expect(result.stdout.trim()).toBe(`exported 3 pieces to ${out}`);
		const rows = JSON.parse(await readFile(out, "utf8")) as unknown[];
		expect(rows).toHaveLength(3);
		expect(rows[2]).toEqual(exportedRow(3, { status: "Error: long and complete", failures: 1 }));
	});

	it("help lists export and import", async () => {
		const result = await adminCli(["help"]);
		expect(result.stdout).toContain("export [--out FILE]");
		expect(result.stdout).toContain("import FILE|- [--dry-run]");
	});
});
