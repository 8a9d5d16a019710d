import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { handleMessage, handleQueue } from "../../src/consumer";
import worker from "../../src/index";
import { oneOffMessage, tickMessage } from "../../src/messages";
import { PERIOD_MS } from "../../src/policy/schedule";
import type { PieceEntry } from "../../src/registry/entry";
import { pieceKey } from "../../src/registry/keys";
import { getEntry, summarise } from "../../src/registry/store";
import { T0, runCount, seedPiece } from "../helpers";

/** Delivers messages to the consumer as one batch; answers the queue's ack/retry record. */
async function deliver(bodies: unknown[], attempts = 1) {
	const batch = createMessageBatch(
		"bg-piece-runs",
		bodies.map((body, i) => ({ id: `m${i}-${crypto.randomUUID()}`, timestamp: Date.now(), attempts, body })),
	);
	const ctx = createExecutionContext();
	await worker.queue(batch, env);
	return { batch, result: await getQueueResult(batch, ctx) };
}

async function entryOf(piece: PieceEntry): Promise<PieceEntry> {
	const entry = await getEntry(env, piece);
	if (!entry) throw new Error("entry vanished");
	return entry;
}

describe("consumer: outcome classes", () => {
	it("ok: Success, lastRun set, next run one period after the tick, message acked", async () => {
		const piece = await seedPiece({ integration: "counter" });
		const { batch, result } = await deliver([tickMessage(piece, T0)]);
		expect(result.explicitAcks).toEqual([batch.messages[0]!.id]);
		const entry = await entryOf(piece);
		expect(entry).toMatchObject({ status: "Success", failures: 0, nextRunAt: T0 + PERIOD_MS, lastRunId: `tick:${T0}:${piece.space}/${piece.pieceId}` });
		expect(entry.lastRun).toBeGreaterThan(0);
		expect(await runCount(piece)).toBe(1);
	});

	it("piece failed: follows the replaced service's policy across ticks, to Disabled on the third", async () => {
		const piece = await seedPiece({ integration: "fail" });
		await deliver([tickMessage(piece, T0)]);
		let entry = await entryOf(piece);
		expect(entry).toMatchObject({ failures: 1, status: "example failure: the fail piece raised an error", nextRunAt: T0 + 2 * PERIOD_MS, disabledAt: 0 });

		// The tick in between is not due: its message is dropped, nothing changes.
		await deliver([tickMessage(piece, T0 + PERIOD_MS)]);
		expect(await entryOf(piece)).toEqual(entry);

		await deliver([tickMessage(piece, T0 + 2 * PERIOD_MS)]);
		entry = await entryOf(piece);
		expect(entry).toMatchObject({ failures: 2, nextRunAt: T0 + 2 * PERIOD_MS + 3 * PERIOD_MS, disabledAt: 0 });

		await deliver([tickMessage(piece, T0 + 5 * PERIOD_MS)]);
		entry = await entryOf(piece);
		expect(entry.failures).toBe(3);
		expect(entry.disabledAt).toBeGreaterThan(0);
		expect(entry.status).toBe("Disabled: example failure: the fail piece raised an error");

		// Disabled pieces are not run, whatever arrives.
		const { result } = await deliver([tickMessage(piece, T0 + 60 * PERIOD_MS)]);
		expect(result.explicitAcks).toHaveLength(1);
		expect((await entryOf(piece)).failures).toBe(3);
	});

	it("a success resets the failure count", async () => {
		const piece = await seedPiece({ integration: "counter", failures: 2, status: "boom", nextRunAt: T0 });
		await deliver([tickMessage(piece, T0)]);
		expect(await entryOf(piece)).toMatchObject({ failures: 0, status: "Success" });
	});

	it("no bgUpdater (404) is the piece's failure, and disables it at once: no run can mend it", async () => {
		const piece = await seedPiece({ integration: "missing" });
		await deliver([tickMessage(piece, T0)]);
		const entry = await entryOf(piece);
		expect(entry).toMatchObject({ failures: 1, disabledBy: "not-found", status: `Disabled: the runtime found no such piece or no bgUpdater: Error: No updater stream found for piece: ${piece.pieceId}` });
		expect(entry.disabledAt).toBeGreaterThan(0);
		// The next tick does not run it.
		expect((await deliver([tickMessage(piece, T0 + 60_000)])).result.explicitAcks).toHaveLength(1);
		expect((await entryOf(piece)).lastRunId).toBe(entry.lastRunId);
	});

	it("timeout counts as the piece's failure and says so", async () => {
		const piece = await seedPiece({ integration: "slow" });
		await deliver([tickMessage(piece, T0)]);
		const entry = await entryOf(piece);
		expect(entry.failures).toBe(1);
		expect(entry.status).toBe(`timed out after ${env.RUNTIME_TIMEOUT_MS} ms`);
	});

	it("runtime unavailable: counts nothing, disables nothing, retries, then leaves it to the next tick", async () => {
		const piece = await seedPiece({ integration: "unavailable", failures: 2, nextRunAt: T0 });
		const first = await deliver([tickMessage(piece, T0)], 1);
		expect(first.result.retryMessages.map((m) => m.msgId)).toEqual([first.batch.messages[0]!.id]);
		const entry = await entryOf(piece);
		expect(entry).toMatchObject({ failures: 2, disabledAt: 0, nextRunAt: T0, lastRunId: "" });
		expect(entry.status).toMatch(/^Runtime unavailable since \d{4}-\d\d-\d\dT.*HTTP 503/);
		expect(entry.unavailableSince).toBeGreaterThan(0);

		// The last allowed attempt is acked: the piece is still due, the next tick sends it again.
		const last = await deliver([tickMessage(piece, T0)], 2);
		expect(last.result.explicitAcks).toHaveLength(1);
		expect(await entryOf(piece)).toMatchObject({ failures: 2, disabledAt: 0, unavailableSince: entry.unavailableSince });
	});

	it("no runtime configured: unavailable, nothing disabled", async () => {
		const piece = await seedPiece({ integration: "counter" });
		const outcome = await handleMessage(tickMessage(piece, T0), 5, { ...env, RUNTIME: undefined, PIECE_RUNTIME_URL: "" });
		expect(outcome).toBe("dropped");
		expect(await entryOf(piece)).toMatchObject({ failures: 0, disabledAt: 0, nextRunAt: 0 });
		expect((await entryOf(piece)).status).toContain("no runtime configured");
	});

	it("reaches a runtime by PIECE_RUNTIME_URL as well as by the RUNTIME binding", async () => {
		const piece = await seedPiece({ integration: "counter" });
		const outcome = await handleMessage(tickMessage(piece, T0), 1, { ...env, RUNTIME: undefined, PIECE_RUNTIME_URL: "http://runtime.example/v1/run" });
		expect(outcome).toBe("ran");
		expect((await entryOf(piece)).status).toBe("Success");
	});
});

describe("consumer: faults", () => {
	it("drops malformed messages without crashing or retrying", async () => {
		const { result } = await deliver([null, "text", { v: 1 }, { v: 1, kind: "tick", space: "did:web:x", pieceId: "x", integration: "a", runId: "r", scheduledTime: 1 }]);
		expect(result.explicitAcks).toHaveLength(4);
		expect(result.retryMessages).toHaveLength(0);
	});

	it("a message for a piece deleted meanwhile is dropped quietly", async () => {
		const piece = await seedPiece({ integration: "counter" });
		await env.REGISTRY.delete(pieceKey(piece));
		const { result } = await deliver([tickMessage(piece, T0)]);
		expect(result.explicitAcks).toHaveLength(1);
		expect(await getEntry(env, piece)).toBeNull();
		expect(await runCount(piece)).toBe(0);
	});

	it("the same message delivered twice runs once", async () => {
		const piece = await seedPiece({ integration: "counter" });
		const message = oneOffMessage("manual", piece, T0);
		await deliver([message]);
		await deliver([message], 2);
		expect(await runCount(piece)).toBe(1);
		// …and twice in one batch, too.
		const other = await seedPiece({ integration: "counter" });
		const tick = tickMessage(other, T0);
		await deliver([tick, tick]);
		expect(await runCount(other)).toBe(1);
	});

	it("a crash on one message retries only that one; the rest of the batch is handled", async () => {
		const pieces = await Promise.all([seedPiece(), seedPiece(), seedPiece()]);
		const broken = pieces[1]!;
		// A registry that fails for one key, as a KV outage on one read would.
		const flaky: KVNamespace = new Proxy(env.REGISTRY, {
			get(target, prop) {
				if (prop === "get") {
					return (key: string, type: "json") => (key.endsWith(broken.pieceId) ? Promise.reject(new Error("injected KV failure")) : target.get(key, type));
				}
				const value = Reflect.get(target, prop);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		const batch = createMessageBatch(
			"bg-piece-runs",
			pieces.map((piece, i) => ({ id: `c${i}`, timestamp: Date.now(), attempts: 1, body: tickMessage(piece, T0) })),
		);
		const ctx = createExecutionContext();
		await handleQueue(batch, { ...env, REGISTRY: flaky });
		const result = await getQueueResult(batch, ctx);
		expect(result.retryMessages.map((m) => m.msgId)).toEqual(["c1"]);
		expect(result.explicitAcks.sort()).toEqual(["c0", "c2"]);
		expect((await entryOf(pieces[0]!)).status).toBe("Success");
		expect((await entryOf(broken)).status).toBe("Initializing");

		// The retried message runs once when redelivered.
		await deliver([tickMessage(broken, T0)], 2);
		expect((await entryOf(broken)).status).toBe("Success");
		expect(await runCount(broken)).toBe(1);
	});

	it("an operator's disable during a run wins over the run's outcome", async () => {
		const piece = await seedPiece({ integration: "slow" });
		const running = deliver([tickMessage(piece, T0)]);
		await new Promise((resolve) => setTimeout(resolve, 50));
		// Written straight to KV, as an admin request served by another isolate would.
		const disabled = { ...(await entryOf(piece)), disabledAt: 123, status: "Disabled via UI" };
		await env.REGISTRY.put(pieceKey(piece), JSON.stringify(disabled), { metadata: summarise(disabled) });
		await running;
		expect(await entryOf(piece)).toMatchObject({ disabledAt: 123, status: "Disabled via UI", failures: 0 });
	});
});

describe("consumer: misconfiguration disables nothing", () => {
	it.each([
		["a PIECE_RUNTIME_URL that is not a URL", { RUNTIME: undefined, PIECE_RUNTIME_URL: "runtime.example/v1/run" }, "not an http(s) URL"],
		["an IDENTITY that is not a key", { IDENTITY: "not a key" }, "identity is invalid"],
		["a PIECE_RUNTIME_URL that reaches something other than a runtime", { RUNTIME: undefined, PIECE_RUNTIME_URL: "http://runtime.example/wrong/path" }, "bg-protocol"],
	])("%s: the runtime counts as unavailable", async (_name, overrides, reason) => {
		const piece = await seedPiece({ integration: "counter" });
		for (let tick = 0; tick < 4; tick++) {
			await handleMessage(tickMessage(piece, T0 + tick * PERIOD_MS), 2, { ...env, ...overrides });
		}
		const entry = await entryOf(piece);
		expect(entry).toMatchObject({ failures: 0, disabledAt: 0, nextRunAt: 0 });
		expect(entry.status).toContain(reason);
	});

	it("stops starting runs past the invocation's budget and hands the rest back", async () => {
		const piece = await seedPiece({ integration: "counter" });
		const batch = createMessageBatch("bg-piece-runs", [0, 1, 2].map((i) => ({ id: `b${i}`, timestamp: Date.now(), attempts: 1, body: oneOffMessage("manual", piece, T0 + i) })));
		const ctx = createExecutionContext();
		let clock = 0;
		// Each reading of the clock moves it on by 7 minutes: the third run would start past 12 minutes.
		await handleQueue(batch, env, () => (clock += 7 * 60_000));
		const result = await getQueueResult(batch, ctx);
		expect(result.explicitAcks.length + result.retryMessages.length).toBe(3);
		expect(result.retryMessages.length).toBeGreaterThanOrEqual(1);
		expect(await runCount(piece)).toBe(result.explicitAcks.length);
	});
});

describe("consumer: re-registration and KV's write rate", () => {
	it("a failure of a run that started before a re-registration does not count", async () => {
		const piece = await seedPiece({ integration: "slow", failures: 2 });
		const running = deliver([tickMessage(piece, T0)]);
		await new Promise((resolve) => setTimeout(resolve, 50));
		const reconnected = { ...(await entryOf(piece)), failures: 0, updatedAt: Date.now(), status: "Re-initializing" };
		await env.REGISTRY.put(pieceKey(piece), JSON.stringify(reconnected), { metadata: summarise(reconnected) });
		await running;
		expect(await entryOf(piece)).toMatchObject({ failures: 0, disabledAt: 0, status: "Re-initializing" });
	});

	it("two runs of one piece in a batch write its key at least a second apart", async () => {
		const piece = await seedPiece({ integration: "counter" });
		const writes: number[] = [];
		const watched: KVNamespace = new Proxy(env.REGISTRY, {
			get(target, prop) {
				if (prop === "put") {
					return (...args: Parameters<KVNamespace["put"]>) => {
						writes.push(Date.now());
						return target.put(...args);
					};
				}
				const value = Reflect.get(target, prop);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		const batch = createMessageBatch("bg-piece-runs", [
			{ id: "w0", timestamp: Date.now(), attempts: 1, body: tickMessage(piece, T0) },
			{ id: "w1", timestamp: Date.now(), attempts: 1, body: oneOffMessage("manual", piece, T0 + 1) },
		]);
		await handleQueue(batch, { ...env, REGISTRY: watched });
		expect(await runCount(piece)).toBe(2);
		expect(writes).toHaveLength(2);
		expect(writes[1]! - writes[0]!).toBeGreaterThanOrEqual(1000);
	});
});
