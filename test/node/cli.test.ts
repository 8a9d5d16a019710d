import { execFile } from "node:child_process";
import { createHash, createPrivateKey, createPublicKey, sign } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const exec = promisify(execFile);

/** Runs `npm run cli -- …` as a user would (through scripts/cli.mjs), never throwing. */
async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
	try {
		const { stdout, stderr } = await exec(process.execPath, ["scripts/cli.mjs", ...args], { env: { ...process.env, ADMIN_TOKEN: "", REGISTRATION_TOKEN: "", ...env } });
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
	const seen: { method: string; url: string; authorization?: string; body: string }[] = [];
	let reply: (request: IncomingMessage) => { status: number; body: unknown } = () => ({ status: 200, body: { success: true } });
	let server: Server;
	let url: string;

	beforeAll(async () => {
		server = createServer(async (request, response) => {
			let body = "";
			for await (const chunk of request) body += chunk;
			seen.push({ method: request.method!, url: request.url!, authorization: request.headers.authorization, body });
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

	it("list --all follows the cursor to the end", async () => {
		reply = (request) => (request.url!.includes("cursor=c1") ? { status: 200, body: { success: true, pieces: [{ pieceId: "b" }], cursor: null } } : { status: 200, body: { success: true, pieces: [{ pieceId: "a" }], cursor: "c1" } });
		const result = await cli(["list", "--all", "--url", url], { ADMIN_TOKEN: "tok" });
		reply = () => ({ status: 200, body: { success: true } });
		expect(JSON.parse(result.stdout).pieces).toEqual([{ pieceId: "a" }, { pieceId: "b" }]);
	});

	it("exit 1 with the Worker's error when it refuses", async () => {
		reply = () => ({ status: 401, body: { success: false, error: "missing or wrong admin token" } });
		const result = await cli(["disable", SPACE, PIECE, "--url", url], { ADMIN_TOKEN: "wrong" });
		reply = () => ({ status: 200, body: { success: true } });
		expect(result.code).toBe(1);
		expect(result.stderr).toContain("HTTP 401: missing or wrong admin token");
	});

	it("exit 2 with the usage for a wrong call, and for an admin command without ADMIN_TOKEN", async () => {
		for (const args of [["bogus"], ["status", SPACE], ["register", "--piece", PIECE], ["space-did"], ["list", "--nope"]]) {
			const result = await cli([...args, "--url", url]);
			expect(result.code, args.join(" ")).toBe(2);
			expect(result.stderr).toContain("Usage: npm run cli");
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

	it("help prints the usage and exits 0", async () => {
		const result = await cli(["help"]);
		expect(result.code).toBe(0);
		expect(result.stdout).toContain("space-did <name>");
	});
});
