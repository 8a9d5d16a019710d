import { reset } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { handleQueue } from "../../src/consumer";
import { identityFromPassphrase, type Identity } from "../../src/identity/ed25519";
import { oneOffMessage, tickMessage } from "../../src/messages";
import { getEntry } from "../../src/registry/store";
import { utf8 } from "../../src/runtime/protocol";
import type { ReportBody, RunReport } from "../../src/runtime/protocol-v2";
import { signedHeaders } from "../../src/runtime/sign";
import { REPORT_GRACE_MS, issueTicket } from "../../src/runtime/ticket";
import type { RunMessage } from "../../src/schema";
import { T0, call, newClientAddress, seedPiece } from "../helpers";
import { V2_ENV, awaitReports, deliver, takeReports } from "../reports";

/*
 * POST /api/runtime/reports: only an allowed runtime's fresh, untampered, first copy of a
 * report is read, and only reports for runs this scheduler dispatched change anything.
 */

const URL_ = new URL("https://scheduler.test/api/runtime/reports");
/** The reference runtime's report key in the tests (vitest.config.ts). */
const runtime = await identityFromPassphrase("test runtime pass");
const service = await identityFromPassphrase(env.OPERATOR_PASS!);
const V2 = V2_ENV;

beforeEach(async () => {
	await reset();
	await takeReports();
});

async function post(body: ReportBody, options: { by?: Identity; at?: number; tamper?: (text: string) => string; headers?: Record<string, string> } = {}) {
	const text = JSON.stringify(body);
	const headers = await signedHeaders(options.by ?? runtime, "POST", URL_, utf8(text), options.at ?? Date.now(), "2", "bg-report-v2");
	const response = await call(URL_.pathname, { method: "POST", headers: { ...headers, ...options.headers }, body: options.tamper ? options.tamper(text) : text });
	return { status: response.status, protocol: response.headers.get("bg-protocol"), body: await response.json<{ results?: { runId: string; status: string }[]; error?: string }>() };
}

/** A report for `message` as dispatched now, with a ticket the scheduler really issued. */
async function reportFor(message: RunMessage, outcome: RunReport["outcome"], error?: string, issuedAt = Date.now()): Promise<RunReport> {
	const ticket = await issueTicket(service, message, 1, issuedAt, 300);
	return { ticket, runId: message.runId, outcome, ...(error ? { error } : {}), durationMs: 42 };
}

describe("reports are refused unless an allowed runtime signed this very request, freshly (401)", () => {
	it("the runtime's own report is recorded once; the same request again is a replay", async () => {
		const piece = await seedPiece();
		await handleQueue({ queue: "bg-piece-runs", messages: [{ id: "a", timestamp: new Date(), attempts: 1, body: tickMessage(piece, T0), ack() {}, retry() {} }], ackAll() {}, retryAll() {} } as unknown as MessageBatch, V2);
		const [captured] = await awaitReports(1);
		const first = await deliver(captured!);
		expect(first.status).toBe(200);
		expect(await first.json()).toMatchObject({ results: [{ status: "recorded" }] });
		expect(await getEntry(env, piece)).toMatchObject({ status: "Success" });
		const again = await deliver(captured!);
		expect(again.status).toBe(401);
		expect(await again.json()).toEqual({ error: "replayed report" });
	});

	it("unsigned, tampered, stale, future and foreign reports", async () => {
		const piece = await seedPiece();
		const body = { reports: [await reportFor(tickMessage(piece, T0), "failed", "boom")] };
		const stranger = await identityFromPassphrase("not the runtime");
		const cases = [
			[await post(body, { headers: { "bg-signature": "" } }), "unsigned request"],
			[await post(body, { tamper: (t) => t.replace("boom", "bam!") }), "bad signature"],
			[await post(body, { at: Date.now() - 10 * 60_000 }), "stale or future timestamp"],
			[await post(body, { at: Date.now() + 10 * 60_000 }), "stale or future timestamp"],
			[await post(body, { by: stranger }), "signer not allowed"],
			[await post(body, { by: service }), "signer not allowed"],
			[await post(body, { headers: { "bg-protocol": "1" } }), "unsupported protocol version 1"],
		] as const;
		for (const [answer, error] of cases) expect(answer).toMatchObject({ status: 401, protocol: "2", body: { error } });
		// Nothing reached the entry.
		expect(await getEntry(env, piece)).toMatchObject({ failures: 0, status: "Initializing" });
	});

	it("with no RUNTIME_SIGNERS no report is accepted", async () => {
		const { receiveReports } = await import("../../src/reports");
		const piece = await seedPiece();
		const text = JSON.stringify({ reports: [await reportFor(tickMessage(piece, T0), "ok")] });
		const headers = await signedHeaders(runtime, "POST", URL_, utf8(text), Date.now(), "2", "bg-report-v2");
		const response = await receiveReports(new Request(URL_, { method: "POST", headers, body: text }), { ...env, RUNTIME_SIGNERS: "" });
		expect(response.status).toBe(401);
		expect(await response.json()).toEqual({ error: "signer not allowed" });
	});
});

describe("a report changes only what this scheduler dispatched (more report faults: test/faults/protocol-v2.test.ts)", () => {
	it("a forged ticket, another scheduler's ticket, a mismatched runId and an expired ticket change nothing", async () => {
		const piece = await seedPiece();
		const message = tickMessage(piece, T0);
		const real = await reportFor(message, "failed", "boom");
		const other = await identityFromPassphrase("another scheduler");
		const answer = await post({
			reports: [
				{ ...real, ticket: real.ticket.slice(0, -2) + (real.ticket.endsWith("AA") ? "BA" : "AA") },
				{ ...real, ticket: await issueTicket(other, message, 1, Date.now(), 300) },
				{ ...real, runId: "tick:0:someone/else" },
				await reportFor(message, "failed", "boom", Date.now() - 300 - REPORT_GRACE_MS - 1_000),
				{ ...real, outcome: "exploded" as never },
			],
		});
		expect(answer.status).toBe(200);
		expect(answer.body.results!.map((r) => r.status)).toEqual(["unknown", "unknown", "unknown", "late", "invalid"]);
		expect(await getEntry(env, piece)).toMatchObject({ failures: 0, status: "Initializing", lastRunId: "" });
	});

	it("a late failure of a run that started before a re-registration is not counted", async () => {
		const piece = await seedPiece();
		const report = await reportFor(oneOffMessage("manual", piece, T0), "failed", "old token", Date.now() - 1_000);
		await exports.default.fetch(new Request("https://scheduler.test/api/integrations/bg", { method: "POST", headers: { "cf-connecting-ip": newClientAddress() }, body: JSON.stringify({ space: piece.space, pieceId: piece.pieceId, integration: "counter" }) }));
		expect((await post({ reports: [report] })).body.results).toEqual([{ runId: report.runId, status: "dropped" }]);
		expect((await getEntry(env, piece))!.failures).toBe(0);
	});
});

describe("health names what protocol 2 still needs", () => {
	it("no REPORT_URL, no RUNTIME_SIGNERS: degraded, saying which", async () => {
		const { health } = await import("../../src/api/health");
		const answer = await health(new Request("https://scheduler.test/api/health"), { ...env, RUNTIME_PROTOCOL: "2", REPORT_URL: "", RUNTIME_SIGNERS: "" });
		expect(answer.status).toBe("degraded");
		expect(answer.runtime).toMatchObject({ protocol: 2 });
		expect(answer.problems).toEqual(expect.arrayContaining([expect.stringContaining("REPORT_URL is not set"), expect.stringContaining("RUNTIME_SIGNERS is empty")]));
		const ok = await health(new Request("https://scheduler.test/api/health"), V2);
		expect(ok.problems.filter((p) => /REPORT_URL|RUNTIME_SIGNERS/.test(p))).toEqual([]);
	});
});

describe("a fault of ours while recording reports", () => {
	it("answers 503 with Retry-After and bg-protocol: 2, so the runtime sends them again; the resend is recorded", async () => {
		const { receiveReports } = await import("../../src/reports");
		const piece = await seedPiece();
		const text = JSON.stringify({ reports: [await reportFor(tickMessage(piece, T0), "failed", "boom")] });
		const sign = async () => signedHeaders(runtime, "POST", URL_, utf8(text), Date.now(), "2", "bg-report-v2");
		const broken = new Proxy(env.REGISTRY, { get: (target, name) => (name === "get" ? () => Promise.reject(new Error("injected KV outage")) : Reflect.get(target, name)) });
		const refused = await receiveReports(new Request(URL_, { method: "POST", headers: await sign(), body: text }), { ...env, REGISTRY: broken });
		expect(refused.status).toBe(503);
		expect(refused.headers.get("retry-after")).toBe("1");
		expect(refused.headers.get("bg-protocol")).toBe("2");
		await new Promise((resolve) => setTimeout(resolve, 5));
		const again = await receiveReports(new Request(URL_, { method: "POST", headers: await sign(), body: text }), env);
		expect(await again.json()).toMatchObject({ results: [{ status: "recorded" }] });
		expect(await getEntry(env, piece)).toMatchObject({ failures: 1, status: "boom" });
	});
});
