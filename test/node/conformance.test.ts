import { execFile, spawn, type ChildProcess } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { didFromPublicKey, identityFromPassphrase } from "../../src/identity/ed25519";
import { utf8, type SignedKind } from "../../src/runtime/protocol";
import type { RunAck } from "../../src/runtime/protocol-v2";
import { signedHeaders } from "../../src/runtime/sign";
import { verifyDispatch, verifyRunRequest } from "../../src/runtime/verify";

/** The scheduler identity the kit signs with in these tests. */
const OPERATOR_PASS = "conformance test pass";
const KIT_DID = (await identityFromPassphrase(OPERATOR_PASS)).did;

/** The reference runtime's report signer: the DID of its default RUNTIME_PASS. */
const REFERENCE_REPORT_DID = (await identityFromPassphrase("reference runtime (development only)")).did;

/** Every check of protocol version 1, by the name the kit prints. */
const CHECKS = ["signed-run", "probe", "unsigned", "tampered-body", "stale-timestamp", "future-timestamp", "foreign-signer", "wrong-version", "replay", "redelivery"];

/** Every check of protocol version 2, by the name the kit prints. */
const V2_CHECKS = ["dispatch", "probe", "unsigned", "tampered-body", "stale-timestamp", "future-timestamp", "foreign-signer", "v1-signature", "replay", "redelivery", "report"];

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

/** Starts a node:http server on 127.0.0.1, on a free port; `url` is its `path` there. */
async function listen(handler: (request: IncomingMessage, response: ServerResponse) => void, path = "/v1/run"): Promise<{ server: Server; url: string; port: number }> {
	const server = createServer(handler);
	await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
	const { port } = server.address() as AddressInfo;
	return { server, url: `http://127.0.0.1:${port}${path}`, port };
}

/** A port on 127.0.0.1 that was free a moment ago. */
async function freePort(): Promise<number> {
	const { server, port } = await listen(() => {});
	await new Promise((resolve) => server.close(resolve));
	return port;
}

/** How a hand-made protocol 2 runtime (below) falls short. */
interface V2Flaws {
	/** Takes a replayed dispatch's runs again instead of refusing them. */
	acceptsReplays?: boolean;
	/** Acknowledges runs and then never reports them. */
	neverReports?: boolean;
	/** The canonical string's first line its reports are signed over (a correct runtime: bg-report-v2). */
	reportKind?: SignedKind;
}

/** The report key of the hand-made runtimes. */
const BROKEN_RUNTIME = await identityFromPassphrase("a hand-made protocol 2 runtime");

/**
 * A small protocol 2 runtime on node:http, correct but for `flaws`: it verifies dispatches
 * with verifyDispatch, acknowledges every run accepted (a replayed one refused), runs
 * nothing, and reports each non-probe run `ok` to reportTo right after answering.
 */
function v2Runtime(flaws: V2Flaws) {
	const seen = new Set<string>();
	const seenBefore = (key: string): boolean => {
		if (flaws.acceptsReplays) return false;
		if (seen.has(key)) return true;
		seen.add(key);
		return false;
	};
	return listen(async (request, response) => {
		const verified = await verifyDispatch(await webRequest(request), { allowedSigners: [KIT_DID], seenBefore });
		const headers = { "content-type": "application/json", "bg-protocol": "2" };
		if (!verified.ok) return void response.writeHead(verified.status, headers).end(JSON.stringify({ error: verified.error }));
		const acks: RunAck[] = verified.body.runs.map((run) => (verified.replayed.has(run.runId) ? { runId: run.runId, status: "refused", error: "replayed runId" } : { runId: run.runId, status: "accepted" }));
		response.writeHead(200, headers).end(JSON.stringify({ runs: acks }));
		const done = verified.body.runs.filter((run) => !run.probe && !verified.replayed.has(run.runId));
		if (flaws.neverReports || done.length === 0) return;
		const url = new URL(verified.body.reportTo);
		const body = utf8(JSON.stringify({ reports: done.map((run) => ({ ticket: run.ticket, runId: run.runId, outcome: "ok", durationMs: 1 })) }));
		const signed = await signedHeaders(BROKEN_RUNTIME, "POST", url, body, Date.now(), "2", flaws.reportKind ?? "bg-report-v2");
		await fetch(url, { method: "POST", headers: signed, body }).then((answer) => answer.arrayBuffer(), () => {});
	}, "/v2/runs");
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
	let v2Url: string;

	beforeAll(async () => {
		runtime = spawn(process.execPath, ["scripts/serve-reference-runtime.mjs", "--port", "0"], { env: { ...process.env, ALLOWED_SIGNERS: `${KIT_DID},${PEM_DID}` }, stdio: ["ignore", "pipe", "inherit"] });
		const first = await new Promise<string>((resolve, reject) => {
			const lines = createInterface({ input: runtime.stdout! });
			lines.once("line", resolve);
			runtime.once("exit", (code) => reject(new Error(`the reference runtime exited (${code}) before it listened`)));
			setTimeout(() => reject(new Error("the reference runtime did not start within 10 s")), 10_000).unref();
		});
		url = /http:\/\/127\.0\.0\.1:\d+\/v1\/run/.exec(first)![0];
		v2Url = /http:\/\/127\.0\.0\.1:\d+\/v2\/runs/.exec(first)![0];
		expect(first).toContain(`reports signed by ${REFERENCE_REPORT_DID}`);
		// Drain its log (one line per run) so it never blocks on a full pipe.
		runtime.stdout!.resume();
	});
	afterAll(() => {
		runtime?.kill();
	});

	it("passes every check, exits 0 and closes with the totals", async () => {
		const result = await kit(["--url", url]);
		expect(result.code, result.stdout + result.stderr).toBe(0);
		expect(result.stdout).toContain("runtime protocol 1 conformance of ");
		expect(result.stdout).toContain('protocol 1 detected: a signed protocol 2 probe dispatch was answered HTTP 401 {"error": "unsupported protocol version 2"} with bg-protocol: 1, not bg-protocol: 2');
		expect(result.stdout).not.toContain("reports to ");
		for (const check of CHECKS) expect(line(result.stdout, check), check).toMatch(new RegExp(`^PASS ${check} `));
		expect(line(result.stdout, "signed-run")).toContain("class ok");
		expect(line(result.stdout, "probe")).toContain("answered as a probe");
		expect(line(result.stdout, "replay")).toContain("replayed runId");
		expect(result.stdout).toContain(`signer ${KIT_DID} (OPERATOR_PASS)`);
		expect(lastLine(result.stdout)).toBe("10 passed, 0 failed");
	});

	it("detects protocol 2 at /v2/runs and passes every check of it, the report reaching the kit's listener", async () => {
		const result = await kit(["--url", v2Url, "--runtime-signer", REFERENCE_REPORT_DID]);
		expect(result.code, result.stdout + result.stderr).toBe(0);
		expect(result.stdout).toContain(`runtime protocol 2 conformance of ${v2Url}`);
		expect(result.stdout).toContain("protocol 2 detected: a signed protocol 2 probe dispatch was answered HTTP 200 with bg-protocol: 2");
		expect(result.stdout).toMatch(new RegExp(`^reports to http://127\\.0\\.0\\.1:\\d+/api/runtime/reports \\(the kit listens on 127\\.0\\.0\\.1:\\d+\\), signed by ${REFERENCE_REPORT_DID}$`, "m"));
		for (const check of V2_CHECKS) expect(line(result.stdout, check), check).toMatch(new RegExp(`^PASS ${check} `));
		expect(line(result.stdout, "dispatch")).toBe("PASS dispatch (HTTP 200, run acknowledged accepted)");
		expect(line(result.stdout, "replay")).toBe("PASS replay (second copy: run acknowledged refused (replayed runId))");
		expect(line(result.stdout, "v1-signature")).toBe("PASS v1-signature (401 bad signature)");
		expect(line(result.stdout, "report")).toMatch(new RegExp(`^PASS report \\(reported after \\d+ ms: POST /api/runtime/reports, outcome ok, durationMs \\d+, ticket echoed, signed by ${REFERENCE_REPORT_DID} \\(the --runtime-signer\\)\\)$`));
		expect(lastLine(result.stdout)).toBe("11 passed, 0 failed");
	});

	it("reports to --report-url, listening on --report-listen, and names any valid signer it saw", async () => {
		const port = await freePort();
		const reportUrl = `http://127.0.0.1:${port}/through/a/tunnel`;
		const result = await kit(["--url", v2Url, "--report-listen", `127.0.0.1:${port}`, "--report-url", reportUrl, "--integration", "fail"]);
		expect(result.code, result.stdout).toBe(0);
		expect(result.stdout).toContain(`reports to ${reportUrl} (the kit listens on 127.0.0.1:${port}), signed by any valid runtime signer`);
		expect(line(result.stdout, "report")).toMatch(new RegExp(`^PASS report \\(reported after \\d+ ms: POST /through/a/tunnel, outcome failed \\(example failure: the fail piece raised an error\\), .*signed by ${REFERENCE_REPORT_DID} \\(any valid signer accepted`));
	});

	it("fails the report check when the reports are signed by another key than --runtime-signer", async () => {
		const result = await kit(["--url", v2Url, "--runtime-signer", KIT_DID]);
		expect(result.code).toBe(1);
		expect(line(result.stdout, "report")).toBe(`FAIL report: the report request was refused: signer not allowed: signed by ${REFERENCE_REPORT_DID}, not the --runtime-signer ${KIT_DID}`);
		expect(lastLine(result.stdout)).toBe("10 passed, 1 failed");
	});

	it("checks the version --protocol names instead of detecting it", async () => {
		const result = await kit(["--url", v2Url, "--protocol", "1"]);
		expect(result.code).toBe(1);
		expect(result.stdout).toContain("runtime protocol 1 conformance of ");
		expect(result.stdout).toContain("protocol 1 as --protocol 1 says (not detected)");
		expect(line(result.stdout, "signed-run")).toMatch(/^FAIL signed-run: HTTP 401, class unavailable/);
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
		expect(result.stdout).toContain("protocol 1 detected: a signed protocol 2 probe dispatch was answered HTTP 200 without the bg-protocol header, not bg-protocol: 2");
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
		expect(result.stdout).toContain("protocol 1 assumed: a signed protocol 2 probe dispatch got no answer (no answer within 200 ms)");
		expect(line(result.stdout, "probe")).toBe("FAIL probe: no answer within 200 ms");
		expect(lastLine(result.stdout)).toBe("0 passed, 10 failed");
	});
});

describe("the conformance kit against broken protocol 2 runtimes", () => {
	const servers: Server[] = [];
	afterAll(async () => {
		await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
	});
	async function start(flaws: V2Flaws): Promise<string> {
		const { server, url } = await v2Runtime(flaws);
		servers.push(server);
		return url;
	}
	const passedBut = (stdout: string, failing: string) => {
		for (const check of V2_CHECKS.filter((name) => name !== failing)) expect(line(stdout, check), check).toMatch(new RegExp(`^PASS ${check} `));
		expect(lastLine(stdout)).toBe("10 passed, 1 failed");
	};

	it("passes every check of a correct one (the baseline for the flaws below)", async () => {
		const result = await kit(["--url", await start({}), "--runtime-signer", BROKEN_RUNTIME.did]);
		expect(result.code, result.stdout).toBe(0);
		expect(lastLine(result.stdout)).toBe("11 passed, 0 failed");
	});

	it("fails the report check only, after --report-timeout-ms, for one that acknowledges runs and never reports them", async () => {
		const started = Date.now();
		const result = await kit(["--url", await start({ neverReports: true }), "--report-timeout-ms", "300"]);
		expect(result.code).toBe(1);
		expect(Date.now() - started).toBeLessThan(15_000);
		expect(line(result.stdout, "report")).toMatch(/^FAIL report: no report of the run reached http:\/\/127\.0\.0\.1:\d+\/api\/runtime\/reports within 300 ms$/);
		passedBut(result.stdout, "report");
	});

	it("fails the replay check only, for one that takes a replayed dispatch's run again", async () => {
		const result = await kit(["--url", await start({ acceptsReplays: true })]);
		expect(result.code).toBe(1);
		expect(line(result.stdout, "replay")).toBe('FAIL replay: the second copy was answered HTTP 200, run acknowledged accepted, not refused as a replay (its run acknowledged refused "replayed runId", or the dispatch refused with 401 {"error":"replayed runId"})');
		passedBut(result.stdout, "replay");
	});

	it("fails the report check, naming the label, for one that signs its reports as dispatches (bg-run-v2)", async () => {
		const result = await kit(["--url", await start({ reportKind: "bg-run-v2" }), "--report-timeout-ms", "5000"]);
		expect(result.code).toBe(1);
		expect(line(result.stdout, "report")).toBe("FAIL report: the report request was refused: bad signature: it is signed over the bg-run-v2 canonical string, a report's is bg-report-v2");
		passedBut(result.stdout, "report");
	});
});

describe("the conformance kit's usage", () => {
	const at = ["--url", "http://127.0.0.1:9/v1/run"];
	it.each([
		[[]],
		[["--url", "notaurl"]],
		[[...at, "--piece", "nope"]],
		[[...at, "--timeout-ms", "0"]],
		[["--nope"]],
		[[...at, "--protocol", "3"]],
		[[...at, "--report-url", "https://scheduler.example/api/runtime/reports"]],
		[[...at, "--report-listen", "8789"]],
		[[...at, "--report-timeout-ms", "soon"]],
		[[...at, "--runtime-signer", "did:key:nope"]],
	])("exits 2 with one line for %j", async (args) => {
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

	it("exits 2 when it cannot listen for reports where --report-listen says", async () => {
		const { server, port } = await listen(() => {});
		const result = await kit([...at, "--report-listen", `127.0.0.1:${port}`]);
		await new Promise((resolve) => server.close(resolve));
		expect(result.code).toBe(2);
		expect(result.stdout).toBe("");
		expect(result.stderr).toMatch(new RegExp(`^error: cannot listen for reports on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
	});

	it("fails every check when nothing listens there", async () => {
		// A port that was free a moment ago, and is closed again.
		const { server, url } = await listen(() => {});
		await new Promise((resolve) => server.close(resolve));
		const result = await kit(["--url", url]);
		expect(result.code).toBe(1);
		expect(result.stdout).toMatch(/^protocol 1 assumed: a signed protocol 2 probe dispatch got no answer \(unreachable: ECONNREFUSED\)$/m);
		expect(line(result.stdout, "signed-run")).toMatch(/^FAIL signed-run: unreachable: ECONNREFUSED/);
		expect(lastLine(result.stdout)).toBe("0 passed, 10 failed");
	});
});
