import { createExecutionContext, createMessageBatch, getQueueResult, reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { handleQueue } from "../../src/consumer";
import { oneOffMessage, tickMessage } from "../../src/messages";
import { PERIOD_MS } from "../../src/policy/schedule";
import type { PieceEntry } from "../../src/registry/entry";
import { getEntry } from "../../src/registry/store";
import type { RunMessage } from "../../src/schema";
import { T0, runCount, seedPiece } from "../helpers";
import { fanOutTick, recordingQueue } from "../recording-queue";
import { V2_ENV, awaitReports, deliverAll, takeReports } from "../reports";

/*
 * Protocol 2 end to end inside workerd: the real fan-out and consumer dispatch to the
 * reference runtime, which acknowledges at once, runs in the background and reports back
 * (through the test relay, test/reports.ts) to the Worker's POST /api/runtime/reports.
 */

const V2 = V2_ENV;

beforeEach(async () => {
	await reset();
	await takeReports();
});

/** One tick: the real fan-out, then the consumer on its messages as one batch; the batch's result. */
async function tick(time: number, overrides: Partial<Env> = {}) {
	const queue = recordingQueue();
	await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, time);
	const batch = createMessageBatch("bg-piece-runs", queue.sent.map((body, i) => ({ id: `${time}-${i}`, timestamp: time, attempts: 1, body })));
	const ctx = createExecutionContext();
	await handleQueue(batch, { ...V2, ...overrides });
	return { sent: queue.sent as RunMessage[], result: await getQueueResult(batch, ctx) };
}

async function entries(pieces: PieceEntry[]): Promise<PieceEntry[]> {
	return Promise.all(pieces.map(async (piece) => (await getEntry(env, piece))!));
}

describe("protocol 2: dispatch, acknowledge, report", () => {
	it("every outcome class arrives by its own path: accepted runs by report, the rest from the acknowledgement", async () => {
		const [counter, fail, slow, missing, down] = await Promise.all(["counter", "fail", "slow", "missing", "unavailable"].map((integration) => seedPiece({ integration })));
		const { result } = await tick(T0);
		// Every message is acked or retried by the time the batch ends; none waits for its run.
		expect(result.explicitAcks.length + result.retryMessages.length).toBe(5);
		// Known at once: no bgUpdater (failed), the runtime refusing (unavailable).
		// Not found (the ack's notFound): disabled at once, as protocol 1's 404.
		expect(await getEntry(env, missing!)).toMatchObject({ failures: 1, disabledBy: "not-found", status: `Disabled: the runtime found no such piece or no bgUpdater: Error: No updater stream found for piece: ${missing!.pieceId}` });
		expect((await getEntry(env, down!))!.status).toMatch(/^Runtime unavailable since .*runtime refused the run: example outage/);
		expect(await getEntry(env, counter!)).toMatchObject({ status: "Initializing", lastRun: 0 });

		// The three accepted runs report later: the slow one when the runtime stops it at the dispatch's timeout.
		const answers = await deliverAll(await awaitReports(3));
		expect(answers.every((a) => a.status === 200)).toBe(true);
		expect(answers.flatMap((a) => a.body.results!.map((r) => r.status))).toEqual(["recorded", "recorded", "recorded"]);
		expect(await getEntry(env, counter!)).toMatchObject({ status: "Success", failures: 0, nextRunAt: T0 + PERIOD_MS });
		expect(await getEntry(env, fail!)).toMatchObject({ status: "example failure: the fail piece raised an error", failures: 1 });
		expect(await getEntry(env, slow!)).toMatchObject({ status: "Worker timed out.", failures: 1 });
		expect(await runCount(counter!)).toBe(1);
	});

	it("a slow run holds up nothing: the batch ends before its report, and the others report first", async () => {
		const slow = await seedPiece({ integration: "slow" });
		const quick = await Promise.all(Array.from({ length: 5 }, () => seedPiece()));
		await tick(T0);
		// The batch has ended; the quick runs report before the slow one is stopped at 300 ms.
		const first = await awaitReports(5);
		const firstRuns = first.flatMap((r) => (JSON.parse(r.body) as { reports: { runId: string }[] }).reports.map((x) => x.runId));
		expect(firstRuns.some((id) => id.includes(slow.pieceId))).toBe(false);
		await deliverAll(first);
		for (const entry of await entries(quick)) expect(entry.status).toBe("Success");
		await deliverAll(await awaitReports(1));
		expect((await getEntry(env, slow))!.failures).toBe(1);
	});

	it("a steady piece's report writes nothing, and one report request carries many runs", async () => {
		const pieces = await Promise.all(Array.from({ length: 20 }, () => seedPiece({ status: "Success", lastRun: Date.now() - 60_000, nextRunAt: T0, updatedAt: Date.now() - 120_000 })));
		await tick(T0);
		const reports = await awaitReports(20);
		expect(reports.length).toBeLessThan(20);
		const answers = await deliverAll(reports);
		expect(answers.flatMap((a) => a.body.results!.map((r) => r.status)).every((s) => s === "recorded")).toBe(true);
		// Nothing changed for a piece that keeps succeeding: the stored entries are as they were.
		for (const [i, entry] of (await entries(pieces)).entries()) expect(entry).toEqual(pieces[i]);
	});

	it("a run whose piece is still running is skipped: the runtime answers busy, the history says so", async () => {
		const slow = await seedPiece({ integration: "slow" });
		await tick(T0);
		// A run-now while the first run is still going (the runtime's RUN_LIMIT_MS is 300 ms).
		const { handleQueue: consume } = await import("../../src/consumer");
		const { oneOffMessage } = await import("../../src/messages");
		const batch = createMessageBatch("bg-piece-runs", [{ id: "now", timestamp: new Date(), attempts: 1, body: oneOffMessage("manual", slow, T0) }]);
		await consume(batch, V2);
		const entry = (await getEntry(env, slow))!;
		expect(entry.history?.at(-1)).toMatchObject({ outcome: "skipped", error: expect.stringContaining("is still going") });
		expect(entry.failures).toBe(0);
		await deliverAll(await awaitReports(1));
	});

	it("a report that never comes (the runtime died holding the run) counts nothing; the next tick runs the piece again", async () => {
		const pieces = await Promise.all(Array.from({ length: 4 }, () => seedPiece()));
		await tick(T0);
		await awaitReports(4); // taken and dropped: lost with the runtime
		for (const entry of await entries(pieces)) expect(entry).toMatchObject({ failures: 0, disabledAt: 0, status: "Initializing" });
		const { sent } = await tick(T0 + PERIOD_MS);
		expect(sent).toHaveLength(4);
		await deliverAll(await awaitReports(4));
		for (const entry of await entries(pieces)) expect(entry).toMatchObject({ status: "Success", failures: 0 });
	});
});

describe("protocol 2: a dispatch the runtime does not take", () => {
	/** A FAKE runtime answering every dispatch with `response`. */
	const fake = (respond: () => Response): Fetcher => ({ fetch: async () => respond(), connect: () => { throw new Error("not used"); } }) as unknown as Fetcher;

	it("429 with Retry-After: every run is unavailable, counted nothing, and retried when the runtime asked", async () => {
		const pieces = await Promise.all(Array.from({ length: 3 }, () => seedPiece()));
		const queue = recordingQueue();
		await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, T0);
		// getQueueResult does not keep a retry's delay: these messages record it themselves.
		const delays: (number | undefined)[] = [];
		const messages = queue.sent.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 1, body, ack() {}, retry: (options?: QueueRetryOptions) => delays.push(options?.delaySeconds) }));
		const runtime = fake(() => Response.json({ error: "busy, slow down" }, { status: 429, headers: { "retry-after": "7", "bg-protocol": "2" } }));
		await handleQueue({ queue: "bg-piece-runs", messages, ackAll() {}, retryAll() {} } as unknown as MessageBatch, { ...V2, RUNTIME: runtime });
		expect(delays).toEqual([7, 7, 7]);
		for (const entry of await entries(pieces)) {
			expect(entry).toMatchObject({ failures: 0, disabledAt: 0 });
			expect(entry.status).toMatch(/runtime answered HTTP 429: busy, slow down/);
		}
	});

	it("a runtime that speaks only protocol 1 says so in the status", async () => {
		const piece = await seedPiece();
		await tick(T0, { RUNTIME: fake(() => Response.json({ error: "body lacks space, pieceId, runId or attempt" }, { status: 401, headers: { "bg-protocol": "1" } })) });
		expect((await getEntry(env, piece))!.status).toContain("it speaks only version 1 (set RUNTIME_PROTOCOL to 1)");
	});

	it("a 200 that is not a protocol 2 answer fakes no success", async () => {
		const piece = await seedPiece();
		await tick(T0, { RUNTIME: fake(() => Response.json({ ok: true })) });
		expect(await getEntry(env, piece)).toMatchObject({ failures: 0, lastRun: 0 });
		expect((await getEntry(env, piece))!.status).toContain("without the bg-protocol header");
	});

	it("no REPORT_URL: nothing is dispatched, the status says what to set", async () => {
		const piece = await seedPiece();
		await tick(T0, { REPORT_URL: "" });
		expect((await getEntry(env, piece))!.status).toContain("REPORT_URL is not set");
		expect(await runCount(piece)).toBe(0);
	});

	it("an acknowledgement of 100 runs with long errors is read whole (past protocol 1's 64 KB)", async () => {
		const pieces = await Promise.all(Array.from({ length: 100 }, () => seedPiece()));
		const error = "e".repeat(900);
		const runtime = fake(() => new Response("", { status: 500 }));
		(runtime as unknown as { fetch: unknown }).fetch = async (_: unknown, init: RequestInit) => {
			const body = JSON.parse(new TextDecoder().decode(init.body as Uint8Array)) as { runs: { runId: string }[] };
			return Response.json({ runs: body.runs.map((r) => ({ runId: r.runId, status: "failed", error })) }, { headers: { "bg-protocol": "2" } });
		};
		await tick(T0, { RUNTIME: runtime });
		for (const entry of await entries(pieces)) expect(entry).toMatchObject({ failures: 1, status: error });
	});

	it("two runs of one piece in one batch: one is dispatched, the other comes back later", async () => {
		const piece = await seedPiece();
		let dispatched = 0;
		const runtime = fake(() => new Response("", { status: 500 }));
		(runtime as unknown as { fetch: unknown }).fetch = async (_: unknown, init: RequestInit) => {
			const body = JSON.parse(new TextDecoder().decode(init.body as Uint8Array)) as { runs: { runId: string }[] };
			dispatched += body.runs.length;
			return Response.json({ runs: body.runs.map((r) => ({ runId: r.runId, status: "accepted" })) }, { headers: { "bg-protocol": "2" } });
		};
		const retried: (number | undefined)[] = [];
		const messages = [tickMessage(piece, T0), oneOffMessage("manual", piece, T0)].map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 1, body, ack() {}, retry: (o?: QueueRetryOptions) => retried.push(o?.delaySeconds) }));
		await handleQueue({ queue: "bg-piece-runs", messages, ackAll() {}, retryAll() {} } as unknown as MessageBatch, { ...V2, RUNTIME: runtime });
		expect(dispatched).toBe(1);
		expect(retried).toEqual([2]);
	});
});
