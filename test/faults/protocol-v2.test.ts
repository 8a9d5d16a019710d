import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { identityFromPassphrase } from "../../src/identity/ed25519";
import { oneOffMessage, tickMessage } from "../../src/messages";
import { PERIOD_MS } from "../../src/policy/schedule";
import type { PieceEntry } from "../../src/registry/entry";
import { getEntry, getRuntimeHealth } from "../../src/registry/store";
import { utf8 } from "../../src/runtime/protocol";
import type { ReportBody, RunReport } from "../../src/runtime/protocol-v2";
import { signedHeaders } from "../../src/runtime/sign";
import { REPORT_GRACE_MS, issueTicket } from "../../src/runtime/ticket";
import type { RunMessage } from "../../src/schema";
import { T0, call, seedPiece } from "../helpers";
import { entries, tick as runTick, untilAborted } from "./rig";
import { V2_ENV, awaitReports, deliverAll, takeReports } from "../reports";

/*
 * Protocol 2 faults, on real local bindings: runtimes that hang, lie or die before or after
 * acknowledging, and reports that are lost, duplicated, reordered, forged or late. Each ends
 * with nothing lost, nothing wrongly disabled, a genuinely hanging piece disabled, and the
 * status saying what happened. The misbehaving runtimes are FAKES (Fetchers); the healthy one
 * is the reference runtime, whose reports reach the Worker through the test relay.
 */

const V2 = V2_ENV;
const MARKED = { "bg-protocol": "2", "content-type": "application/json" };
const runtimeKey = await identityFromPassphrase("test runtime pass");
const service = await identityFromPassphrase(env.OPERATOR_PASS!);

beforeEach(async () => {
	await reset();
	await takeReports();
});

/** A FAKE runtime; `dispatches` counts what reached it. */
function fakeRuntime(handle: (body: { runs: { runId: string; probe?: true }[] }, init: RequestInit) => Response | Promise<Response>): Fetcher & { dispatches: number } {
	const runtime = {
		dispatches: 0,
		async fetch(url: string | URL, init: RequestInit = {}) {
			runtime.dispatches++;
			return handle(JSON.parse(new TextDecoder().decode(init.body as Uint8Array)), init);
		},
		connect() {
			throw new Error("not used");
		},
	};
	return runtime as unknown as Fetcher & { dispatches: number };
}

/** One tick against `runtime` (the reference runtime if none), over protocol 2. */
function tick(time: number, runtime?: Fetcher): Promise<RunMessage[]> {
	return runTick(time, { ...V2, ...(runtime ? { RUNTIME: runtime } : {}) });
}

/** Four ticks against `runtime`, then checks nothing was counted and the status says why; then recovery. */
async function outageOf(runtime: Fetcher, statusText: RegExp): Promise<void> {
	const pieces = await Promise.all(Array.from({ length: 5 }, () => seedPiece()));
	for (let k = 0; k < 4; k++) expect(await tick(T0 + k * PERIOD_MS, runtime)).toHaveLength(5);
	for (const entry of await entries(pieces)) {
		expect(entry).toMatchObject({ failures: 0, disabledAt: 0, lastRun: 0 });
		expect(entry.status).toMatch(/^Runtime unavailable since \d{4}-/);
		expect(entry.status).toMatch(statusText);
	}
	expect(await getRuntimeHealth(env)).toMatchObject({ state: "unavailable" });
	// Back (the reference runtime): every piece runs, and health recovers.
	await tick(T0 + 4 * PERIOD_MS);
	await deliverAll(await awaitReports(5));
	for (const entry of await entries(pieces)) expect(entry).toMatchObject({ status: "Success", failures: 0, unavailableSince: 0 });
	expect(await getRuntimeHealth(env)).toMatchObject({ state: "ok" });
}

describe("protocol 2: a runtime that does not acknowledge is unavailable, never the pieces' fault", () => {
	it("hangs before acknowledging", async () => {
		await outageOf(fakeRuntime((_, init) => untilAborted(init)), /no acknowledgement within 300 ms: the runtime took none of the 5 runs/);
	});

	it("sends its headers, then stalls the body", async () => {
		const stalled = () => new Response(new ReadableStream({ start: (c) => c.enqueue(utf8('{"runs":[')) }), { status: 200, headers: MARKED });
		await outageOf(fakeRuntime(stalled), /no acknowledgement within 300 ms/);
	});

	it("answers 200 without the protocol header", async () => {
		await outageOf(fakeRuntime(() => Response.json({ ok: true })), /HTTP 200 without the bg-protocol header: that is not a piece runtime's answer/);
	});

	it("is unreachable", async () => {
		await outageOf(fakeRuntime(() => Promise.reject(new TypeError("Network connection lost."))), /runtime unreachable: https:\/\/runtime.internal\/v2\/runs: TypeError: Network connection lost/);
	});

	it("refuses every run as a replay, the probe too (a broken replay store)", async () => {
		const refusing = fakeRuntime((body) => Response.json({ runs: body.runs.map((r) => ({ runId: r.runId, status: "refused", error: "replayed runId" })) }, { headers: MARKED }));
		await outageOf(refusing, /refused the run as already seen \(replayed runId\), and a fresh liveness probe too: its replay store is broken$/);
	});
});

describe("protocol 2: a healthy runtime with one piece that hangs", () => {
	it("the runtime reports the hanging piece's timeouts; it is disabled on the third, the others run", async () => {
		const healthy = await Promise.all(Array.from({ length: 4 }, () => seedPiece()));
		const hanging = await seedPiece({ integration: "slow" });
		for (let k = 0; k < 8; k++) {
			const sent = await tick(T0 + k * PERIOD_MS);
			await deliverAll(await awaitReports(sent.length));
			// The runtime forgets a stopped run after RUN_LIMIT_MS (300 ms): the next is not busy.
			await new Promise((resolve) => setTimeout(resolve, 350));
		}
		expect(await getEntry(env, hanging)).toMatchObject({ failures: 3, status: "Disabled: Worker timed out." });
		for (const entry of await entries(healthy)) expect(entry).toMatchObject({ status: "Success", failures: 0, disabledAt: 0 });
	});
});

describe("protocol 2: the runtime dies holding accepted runs", () => {
	it("their reports never come: nothing counted; refused while down; every piece runs once it is back", async () => {
		const pieces = await Promise.all(Array.from({ length: 6 }, () => seedPiece()));
		// FAKE: accepts everything, then dies (reports nothing, refuses connections).
		let alive = true;
		const dying = fakeRuntime((body) => {
			if (!alive) throw new TypeError("Network connection lost.");
			alive = false;
			return Response.json({ runs: body.runs.map((r) => ({ runId: r.runId, status: "accepted" })) }, { headers: MARKED });
		});
		await tick(T0, dying);
		for (const entry of await entries(pieces)) expect(entry).toMatchObject({ failures: 0, disabledAt: 0, status: "Initializing" });
		await tick(T0 + PERIOD_MS, dying);
		for (const entry of await entries(pieces)) expect(entry.status).toMatch(/^Runtime unavailable since .*Network connection lost/);
		await tick(T0 + 2 * PERIOD_MS);
		await deliverAll(await awaitReports(6));
		for (const entry of await entries(pieces)) expect(entry).toMatchObject({ status: "Success", failures: 0, disabledAt: 0 });
	});
});

/** Posts reports signed by the reference runtime's key. */
async function post(body: ReportBody) {
	const text = JSON.stringify(body);
	const url = new URL("https://scheduler.test/api/runtime/reports");
	const headers = await signedHeaders(runtimeKey, "POST", url, utf8(text), Date.now(), "2", "bg-report-v2");
	const response = await call(url.pathname, { method: "POST", headers, body: text });
	return (await response.json<{ results: { runId: string; status: string }[] }>()).results.map((r) => r.status);
}

async function reportFor(message: RunMessage, outcome: RunReport["outcome"], error?: string, issuedAt = Date.now()): Promise<RunReport> {
	return { ticket: await issueTicket(service, message, 1, issuedAt, 300), runId: message.runId, outcome, ...(error ? { error } : {}), durationMs: 42 };
}

describe("protocol 2: reports lost, duplicated, reordered, forged and late", () => {
	it("lost: nothing is counted, and the next tick runs the piece again", async () => {
		const piece = await seedPiece();
		await tick(T0);
		await awaitReports(1); // lost on the way
		expect(await getEntry(env, piece)).toMatchObject({ status: "Initializing", failures: 0 });
		await tick(T0 + PERIOD_MS);
		await deliverAll(await awaitReports(1));
		expect(await getEntry(env, piece)).toMatchObject({ status: "Success", nextRunAt: T0 + 2 * PERIOD_MS });
	});

	it("duplicated (sent again, signed afresh): applied once", async () => {
		const piece = await seedPiece();
		const report = await reportFor(tickMessage(piece, T0), "failed", "boom");
		expect(await post({ reports: [report] })).toEqual(["recorded"]);
		expect(await post({ reports: [report, report] })).toEqual(["dropped", "dropped"]);
		expect(await getEntry(env, piece)).toMatchObject({ failures: 1, status: "boom" });
	});

	it("reordered: an older tick's report after a newer one's is dropped", async () => {
		const piece = await seedPiece();
		const newer = await reportFor(tickMessage(piece, T0 + PERIOD_MS), "ok");
		const older = await reportFor(tickMessage(piece, T0), "failed", "boom");
		expect(await post({ reports: [newer] })).toEqual(["recorded"]);
		await new Promise((resolve) => setTimeout(resolve, 1_000));
		expect(await post({ reports: [older] })).toEqual(["dropped"]);
		expect(await getEntry(env, piece)).toMatchObject({ status: "Success", failures: 0, nextRunAt: T0 + 2 * PERIOD_MS });
	});

	it("forged (a ticket we never issued, or altered) and late (expired): nothing changes", async () => {
		const piece = await seedPiece();
		const message = oneOffMessage("manual", piece, T0);
		const real = await reportFor(message, "failed", "boom");
		const stranger = await identityFromPassphrase("another scheduler");
		const statuses = await post({
			reports: [
				{ ...real, ticket: `${real.ticket}x` },
				{ ...real, ticket: await issueTicket(stranger, message, 1, Date.now(), 300) },
				await reportFor(message, "failed", "boom", Date.now() - 300 - REPORT_GRACE_MS - 1_000),
			],
		});
		expect(statuses).toEqual(["unknown", "unknown", "late"]);
		expect(await getEntry(env, piece)).toMatchObject({ failures: 0, status: "Initializing", lastRunId: "" });
	});
});
