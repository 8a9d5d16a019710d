import { execFile, spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { didFromPublicKey, identityFromPassphrase } from "../../src/identity/ed25519";
import { verifyRunRequest } from "../../src/runtime/verify";

/** The scheduler identity the kit signs with in these tests. */
const OPERATOR_PASS = "conformance test pass";
const KIT_DID = (await identityFromPassphrase(OPERATOR_PASS)).did;

/** Every check of protocol version 1, by the name the kit prints. */
const CHECKS = ["signed-run", "probe", "unsigned", "tampered-body", "stale-timestamp", "future-timestamp", "foreign-signer", "wrong-version", "replay", "redelivery"];

/** Runs `npm run conformance -- …` as a user would (through scripts/conformance.mjs), never throwing. */
function kit(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
	return new Promise((resolve) => {
		execFile(process.execPath, ["scripts/conformance.mjs", ...args], { env: { ...process.env, IDENTITY: "", OPERATOR_PASS, ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
			resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
		});
	});
}

const lastLine = (text: string) => text.trimEnd().split("\n").at(-1);
/** The line the kit printed for one check. */
const line = (text: string, check: string) => text.split("\n").find((l) => l.startsWith(`PASS ${check} (`) || l.startsWith(`FAIL ${check}:`));

/** Starts a node:http server on 127.0.0.1, on a free port. */
async function listen(handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<{ server: Server; url: string }> {
	const server = createServer(handler);
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/run` };
}

/** The incoming request as a web Request, for code written against web APIs. */
async function webRequest(incoming: IncomingMessage): Promise<Request> {
	const chunks: Buffer[] = [];
	for await (const chunk of incoming) chunks.push(chunk as Buffer);
	const headers = new Headers();
	for (let i = 0; i < incoming.rawHeaders.length; i += 2) headers.append(incoming.rawHeaders[i]!, incoming.rawHeaders[i + 1]!);
	return new Request(`http://127.0.0.1${incoming.url}`, { method: incoming.method, headers, body: incoming.method === "POST" ? Buffer.concat(chunks) : undefined });
}

describe("the conformance kit against the reference runtime, served in Node", () => {
	// A PKCS#8 key given as IDENTITY, which wins over OPERATOR_PASS as in the Worker.
	const { privateKey, publicKey } = generateKeyPairSync("ed25519");
	const PEM = privateKey.export({ format: "pem", type: "pkcs8" }).toString();
	const PEM_DID = didFromPublicKey(Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url"));
	let runtime: ChildProcess;
	let url: string;

	beforeAll(async () => {
		runtime = spawn(process.execPath, ["scripts/serve-reference-runtime.mjs", "--port", "0"], { env: { ...process.env, ALLOWED_SIGNERS: `${KIT_DID},${PEM_DID}` }, stdio: ["ignore", "pipe", "inherit"] });
		const first = await new Promise<string>((resolve, reject) => {
			const lines = createInterface({ input: runtime.stdout! });
			lines.once("line", resolve);
			runtime.once("exit", (code) => reject(new Error(`the reference runtime exited (${code}) before it listened`)));
			setTimeout(() => reject(new Error("the reference runtime did not start within 10 s")), 10_000).unref();
		});
		url = /http:\/\/127\.0\.0\.1:\d+\/v1\/run/.exec(first)![0];
		// Drain its log (one line per run) so it never blocks on a full pipe.
		runtime.stdout!.resume();
	});
	afterAll(() => {
		runtime?.kill();
	});

	it("passes every check, exits 0 and closes with the totals", async () => {
		const result = await kit(["--url", url]);
		expect(result.code, result.stdout + result.stderr).toBe(0);
		for (const check of CHECKS) expect(line(result.stdout, check), check).toMatch(new RegExp(`^PASS ${check} `));
		expect(line(result.stdout, "signed-run")).toContain("class ok");
		expect(line(result.stdout, "probe")).toContain("answered as a probe");
		expect(line(result.stdout, "replay")).toContain("replayed runId");
		expect(result.stdout).toContain(`signer ${KIT_DID} (OPERATOR_PASS)`);
		expect(lastLine(result.stdout)).toBe("10 passed, 0 failed");
	});

	it("counts a piece's failure as a protocol answer, and takes the space, piece and integration given", async () => {
		const space = (await identityFromPassphrase("some space")).did;
		const piece = "fid1:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
		const result = await kit(["--url", url, "--space", space, "--piece", piece, "--integration", "fail", "--timeout-ms", "5000"]);
		expect(result.code, result.stdout).toBe(0);
		expect(result.stdout).toContain(`space ${space}, piece ${piece}, integration fail`);
		expect(line(result.stdout, "signed-run")).toMatch(/^PASS signed-run \(HTTP 422, class failed \(example failure/);
		expect(lastLine(result.stdout)).toBe("10 passed, 0 failed");
	});

	it("signs with IDENTITY (PEM) when it is set, over OPERATOR_PASS", async () => {
		const result = await kit(["--url", url], { IDENTITY: PEM, OPERATOR_PASS: "not the allowed one" });
		expect(result.code, result.stdout).toBe(0);
		expect(result.stdout).toContain(`signer ${PEM_DID} (IDENTITY)`);
	});

	it("fails the checks that need an allowed signer when the runtime does not allow the kit's", async () => {
		const result = await kit(["--url", url], { OPERATOR_PASS: "someone else" });
		expect(result.code).toBe(1);
		expect(line(result.stdout, "signed-run")).toMatch(/^FAIL signed-run: HTTP 401, .*signer not allowed\); does the runtime allow the signer above\?$/);
		expect(lastLine(result.stdout)).toMatch(/^\d+ passed, [1-9]\d* failed$/);
	});
});

describe("the conformance kit against broken runtimes", () => {
	const servers: Server[] = [];
	afterAll(async () => {
		await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
	});

	it("fails everything for a server that answers 200 {ok: true} without the bg-protocol header", async () => {
		const { server, url } = await listen((request, response) => {
			request.resume();
			response.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
		});
		servers.push(server);
		const result = await kit(["--url", url]);
		expect(result.code).toBe(1);
		expect(line(result.stdout, "signed-run")).toMatch(/^FAIL signed-run: HTTP 200, class unavailable \(.*without the bg-protocol header/);
		expect(line(result.stdout, "probe")).toMatch(/^FAIL probe: .*without the bg-protocol header/);
		expect(line(result.stdout, "unsigned")).toMatch(/^FAIL unsigned: answered HTTP 200.*must be refused with 401$/);
		expect(line(result.stdout, "replay")).toMatch(/^FAIL replay: the first request was not accepted/);
		expect(lastLine(result.stdout)).toBe("0 passed, 10 failed");
	});

	it("fails the replay check only, for a runtime that verifies signatures but accepts replays", async () => {
		const { server, url } = await listen(async (request, response) => {
			// A runtime that opted out of replay protection: every verified copy runs again.
			const verified = await verifyRunRequest(await webRequest(request), { allowedSigners: [KIT_DID], seenBefore: () => false });
			const [status, body] = verified.ok ? [200, { ok: true }] : [verified.status, { error: verified.error }];
			response.writeHead(status, { "content-type": "application/json", "bg-protocol": "1" }).end(JSON.stringify(body));
		});
		servers.push(server);
		const result = await kit(["--url", url]);
		expect(result.code).toBe(1);
		expect(line(result.stdout, "replay")).toBe('FAIL replay: the second copy was answered HTTP 200, class ok, not refused with 401 {"error":"replayed runId"}');
		for (const check of CHECKS.filter((name) => name !== "replay")) expect(line(result.stdout, check), check).toMatch(new RegExp(`^PASS ${check} `));
		expect(lastLine(result.stdout)).toBe("9 passed, 1 failed");
	});

	it("fails every check, within the timeout, for a runtime that never answers", async () => {
		const { server, url } = await listen(() => {
			// Holds every request open: the kit's per-request timeout must end each check.
		});
		servers.push(server);
		const result = await kit(["--url", url, "--timeout-ms", "200"]);
		server.closeAllConnections();
		expect(result.code).toBe(1);
		expect(line(result.stdout, "probe")).toBe("FAIL probe: no answer within 200 ms");
		expect(lastLine(result.stdout)).toBe("0 passed, 10 failed");
	});
});

describe("the conformance kit's usage", () => {
	it.each([[[]], [["--url", "notaurl"]], [["--url", "http://127.0.0.1:9/v1/run", "--piece", "nope"]], [["--url", "http://127.0.0.1:9/v1/run", "--timeout-ms", "0"]], [["--nope"]]])("exits 2 with one line for %j", async (args) => {
		const result = await kit(args);
		expect(result.code).toBe(2);
		expect(result.stdout).toBe("");
		expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
		expect(result.stderr).toMatch(/^error: /);
	});

	it("exits 2 for an IDENTITY that is not a key", async () => {
		const result = await kit(["--url", "http://127.0.0.1:9/v1/run"], { IDENTITY: "not a key" });
		expect(result.code).toBe(2);
		expect(result.stderr).toMatch(/^error: IDENTITY is not a PKCS#8 Ed25519 key/);
	});

	it("fails every check when nothing listens there", async () => {
		// A port that was free a moment ago, and is closed again.
		const { server, url } = await listen(() => {});
		await new Promise((resolve) => server.close(resolve));
		const result = await kit(["--url", url]);
		expect(result.code).toBe(1);
		expect(line(result.stdout, "signed-run")).toMatch(/^FAIL signed-run: unreachable: ECONNREFUSED/);
		expect(lastLine(result.stdout)).toBe("0 passed, 10 failed");
	});
});
