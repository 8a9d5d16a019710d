import { createScheduledController, reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { PLATFORM_LIMITS, aimedAt, delayUntil, fanOutLane, laneAnchor, laneStart } from "../../src/fanout";
import worker from "../../src/index";
import { PERIOD_MS, phaseSeconds } from "../../src/policy/schedule";
import { SHARD_COUNT } from "../../src/registry/keys";
import { getEntry, getLastTick } from "../../src/registry/store";
import { T0, eventually, fireTick, newSpace, runCount, seedPiece } from "../helpers";
import { fanOutTick, recordingQueue } from "../recording-queue";

beforeEach(() => reset());

/** Seeds `count` pieces, 50 writes at a time. */
async function seedMany(count: number, make: (i: number) => Parameters<typeof seedPiece>[0]) {
	const pieces = [];
	for (let i = 0; i < count; i += 50) {
		pieces.push(...(await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => seedPiece(make(i + j))))));
	}
	return pieces;
}

describe("fan-out", () => {
	it("refuses a tick whose time cannot be milliseconds (a local tick fired with time= in seconds): nothing dispatched or recorded", async () => {
		const piece = await seedPiece();
		await fireTick(Math.floor(T0 / 1000));
		expect(await getLastTick(env)).toBeNull();
		expect(await getEntry(env, piece)).toMatchObject({ lastRun: 0, status: "Initializing" });
		expect(await runCount(piece)).toBe(0);
		await fireTick(T0);
		expect(await getLastTick(env)).toMatchObject({ scheduledTime: T0, dispatched: 1 });
	});

	it("sends exactly one message per enabled, due piece past 1,000 keys, and skips the rest", async () => {
		// 1,200 pieces of one space (a shard of more than one page), the rest in spaces of their own.
		const big = newSpace();
		const state = (i: number) => (i % 20 === 0 ? { disabledAt: 5 } : i % 20 === 1 ? { nextRunAt: T0 + PERIOD_MS } : i % 20 === 2 ? { nextRunAt: T0 } : {});
		const pieces = await seedMany(2_150, (i) => ({ ...state(i), ...(i < 1_200 ? { space: big } : {}) }));
		const queue = recordingQueue();
		const summary = await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, T0);

		const due = pieces.filter((p) => p.disabledAt === 0 && p.nextRunAt <= T0);
		expect(due.length).toBeGreaterThan(1_900);
		expect(summary).toMatchObject({ listed: 2_150, due: due.length, dispatched: due.length, skipped: 2_150 - due.length, failed: 0 });
		// Every shard is listed; the big space's shard takes a second page.
		expect(summary.listCalls).toBe(SHARD_COUNT + 1);
		expect(summary.next).toBeNull();
		const sentIds = queue.sent.map((m) => `${m.space}/${m.pieceId}`);
		expect(new Set(sentIds).size).toBe(sentIds.length);
		expect(new Set(sentIds)).toEqual(new Set(due.map((p) => `${p.space}/${p.pieceId}`)));
		expect(queue.sent.every((m) => m.kind === "tick" && m.scheduledTime === T0 && m.integration === "counter")).toBe(true);
		expect(queue.calls).toBe(summary.sendCalls);
		expect(queue.calls).toBeGreaterThanOrEqual(Math.ceil(due.length / 100));
	});

	it("leaves pieces whose send failed due, and the next tick dispatches them", async () => {
		await seedMany(250, () => ({}));
		const failing = recordingQueue({ failCalls: [0] });
		const first = await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: failing as unknown as Queue }, T0);
		expect(first.failed).toBeGreaterThan(0);
		expect(first.failed + first.dispatched).toBe(250);
		expect(failing.sent).toHaveLength(first.dispatched);

		const next = recordingQueue();
		const second = await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: next as unknown as Queue }, T0 + PERIOD_MS);
		// Nothing ran in between (a fake producer), so all 250 are still due: none was lost.
		expect(second.dispatched).toBe(250);
	});

	it("through the scheduled handler: records the tick summary and the runs happen", async () => {
		const piece = await seedPiece({ integration: "counter" });
		await worker.scheduled(createScheduledController({ scheduledTime: T0, cron: "* * * * *" }), env);
		const tick = await getLastTick(env);
		expect(tick).toMatchObject({ scheduledTime: T0, listed: 1, due: 1, dispatched: 1 });
		const entry = await eventually(async () => {
			const e = await getEntry(env, piece);
			return e?.status === "Success" ? e : undefined;
		});
		// The next due time counts from the tick's scheduledTime, not from the wall clock.
		expect(entry.nextRunAt).toBe(T0 + PERIOD_MS);
	});

	it("through the Worker's exports: a tick fired twice for the same minute runs each piece once", async () => {
		const piece = await seedPiece({ integration: "counter" });
		await fireTick(T0);
		await fireTick(T0);
		await eventually(async () => ((await getEntry(env, piece))?.status === "Success" ? true : undefined));
		// Let any second delivery be handled, then ask the reference runtime how often it ran.
		await new Promise((resolve) => setTimeout(resolve, 2_500));
		expect(await runCount(piece)).toBe(1);
	});
});

describe("fan-out within one invocation's budget", () => {
	/** Runs a lane from its start, then from each hand-over, as the fan-out queue would; every result. */
	async function chain(queue: ReturnType<typeof recordingQueue>, limits: typeof PLATFORM_LIMITS) {
		const results = [await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, T0, limits)];
		while (results.at(-1)!.next) results.push(await fanOutLane({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, results.at(-1)!.next!, limits));
		return results;
	}

	it("stops before the KV-operation budget and hands over the rest: every piece sent exactly once", async () => {
		const big = newSpace();
		const pieces = await seedMany(2_500, (i) => (i < 1_500 ? { space: big } : {}));
		const queue = recordingQueue();
		const results = await chain(queue, { ...PLATFORM_LIMITS, maxListCalls: 1 });
		// 16 shards and one more page for the big space: 17 list calls, 1 an invocation.
		for (const result of results) expect(result.listCalls).toBe(1);
		expect(results).toHaveLength(SHARD_COUNT + 1);
		expect(results.slice(0, -1).every((r) => r.next !== null)).toBe(true);
		// A hand-over inside the big space's shard carries a KV cursor.
		expect(results.some((r) => r.next?.cursor)).toBe(true);
		const sent = queue.sent.map((m) => `${m.space}/${m.pieceId}`);
		expect(sent).toHaveLength(2_500);
		expect(new Set(sent)).toEqual(new Set(pieces.map((p) => `${p.space}/${p.pieceId}`)));
	});

	it("stops before the subrequest budget, counting a page's list and sends", async () => {
		const big = newSpace();
		await seedMany(2_500, () => ({ space: big }));
		const queue = recordingQueue();
		// One full page takes 1 list + 10 sends; the empty shards 1 list each. A full page
		// needs 11 subrequests of room, so no invocation passes 32.
		const results = await chain(queue, { ...PLATFORM_LIMITS, maxSubrequests: 32 });
		for (const result of results) expect(result.listCalls + result.sendCalls).toBeLessThanOrEqual(32);
		expect(results.length).toBeGreaterThan(1);
		expect(new Set(queue.sent.map((m) => m.pieceId)).size).toBe(2_500);
		expect(queue.sent).toHaveLength(2_500);
	});

	it("abandons a lane still sending a period after its tick began: the next tick covers it", async () => {
		await seedMany(10, () => ({}));
		const queue = recordingQueue();
		const result = await fanOutLane({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, laneStart(T0, Date.now() - PERIOD_MS, 0));
		expect(result).toMatchObject({ listCalls: 0, dispatched: 0, next: null });
	});

	it("paces sends below the queue's messages-per-second limit", async () => {
		await seedMany(1_000, () => ({}));
		const queue = recordingQueue();
		let now = 0;
		const sleeps: number[] = [];
		const clock = { now: () => now, sleep: async (ms: number) => void (sleeps.push(ms), (now += ms)) };
		const summary = await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, T0, { ...PLATFORM_LIMITS, maxMessagesPerSecond: 300 }, clock);
		expect(summary.dispatched).toBe(1_000);
		// 1,000 messages at 300 a second: the last batch (≤ 100) goes at its slot, after all the others' 3–3.3 s.
		const waited = sleeps.reduce((a, b) => a + b, 0);
		expect(waited).toBeGreaterThanOrEqual(3_000);
		expect(waited).toBeLessThan(3_334);
	});
});

describe("load spreading", () => {
	it("delays each piece's run by its stable phase, the same every tick", async () => {
		const pieces = await seedMany(300, () => ({}));
		const first = recordingQueue();
		const second = recordingQueue();
		const spreadEnv = { REGISTRY: env.REGISTRY, SPREAD_SECONDS: "50" };
		await fanOutTick({ ...spreadEnv, RUNS: first as unknown as Queue }, T0);
		await fanOutTick({ ...spreadEnv, RUNS: second as unknown as Queue }, T0 + PERIOD_MS);
		const delayOf = (queue: ReturnType<typeof recordingQueue>) => new Map(queue.sent.map((m, i) => [`${m.space}/${m.pieceId}`, queue.delays[i]]));
		const a = delayOf(first);
		const b = delayOf(second);
		expect(a.size).toBe(300);
		for (const piece of pieces) {
			const key = `${piece.space}/${piece.pieceId}`;
			expect(a.get(key)).toBe(phaseSeconds(piece, 50));
			expect(b.get(key)).toBe(a.get(key));
			expect(a.get(key)).toBeGreaterThanOrEqual(0);
			expect(a.get(key)).toBeLessThan(50);
		}
		// Without spreading, every run goes at once.
		const flat = recordingQueue();
		await fanOutTick({ REGISTRY: env.REGISTRY, SPREAD_SECONDS: "0", RUNS: flat as unknown as Queue }, T0 + 2 * PERIOD_MS);
		expect(new Set(flat.delays)).toEqual(new Set([0]));
	});

	it("aims each run at the same point of every minute, however the fan-out's own progress varies", async () => {
		const pieces = await seedMany(400, () => ({}));
		const rate = 100;
		/** A fake clock, advanced by sleeps and by each KV list call (`listMs`: a slow registry). */
		const tickOnce = async (tickTime: number, lateMs: number, listMs: number) => {
			let now = tickTime + lateMs;
			const clock = { now: () => now, sleep: async (ms: number) => void (now += ms) };
			const slowList = { list: async (options: KVNamespaceListOptions) => ((now += listMs), env.REGISTRY.list(options)) } as unknown as KVNamespace;
			const queue = recordingQueue({ onSend: () => now });
			const summary = await fanOutTick({ REGISTRY: slowList, RUNS: queue as unknown as Queue, SPREAD_SECONDS: "30" }, tickTime, { ...PLATFORM_LIMITS, maxMessagesPerSecond: rate }, clock);
			expect(summary.dispatched).toBe(400);
			return new Map(queue.sent.map((m, i) => [`${m.space}/${m.pieceId}`, { dueAt: m.dueAt!, delay: queue.delays[i]!, arrives: queue.sentAt[i]! + queue.delays[i]! * 1000 }]));
		};
		// The first tick's cron fires on time over a quick registry; the second's fires 1.5 s late, over one that takes 300 ms a page.
		const first = await tickOnce(T0, 0, 0);
		const second = await tickOnce(T0 + PERIOD_MS, 1_500, 300);
		let behind = 0;
		for (const piece of pieces) {
			const key = `${piece.space}/${piece.pieceId}`;
			const [a, b] = [first.get(key)!, second.get(key)!];
			// The aims are a period apart exactly: the cron's lateness and the slow listing move nothing.
			expect(b.dueAt - a.dueAt).toBe(PERIOD_MS);
			// Each arrives within half a second of its aim (delays are whole seconds), unless it was sent after it.
			for (const run of [a, b]) {
				if (run.arrives - run.dueAt > 500) {
					// Sent after its aim: it goes at once.
					behind++;
					expect(run.delay).toBe(0);
					expect(run.arrives - run.dueAt).toBeLessThanOrEqual(1_500 + 16 * 300 + 1_000);
				} else expect(Math.abs(run.arrives - run.dueAt)).toBeLessThanOrEqual(500);
			}
		}
		// Only some pieces (an early phase on a late page: the second tick falls up to 6 s
		// behind its 4 s plan, against phases of 0–29 s) were sent after their aim.
		expect(behind).toBeLessThan(100);
		// A cron 30 s late plans from when it began: the runs keep their spread instead of going at once.
		const late = [...(await tickOnce(T0 + 2 * PERIOD_MS, 30_000, 0)).values()];
		expect(late.filter((run) => run.arrives - run.dueAt > 500).length).toBeLessThan(40);
		expect(Math.min(...late.map((run) => run.dueAt))).toBeGreaterThanOrEqual(T0 + 2 * PERIOD_MS + 30_000);
	});

	it("plans a lane from its tick's minute when the cron fired a little late, and from when it began otherwise", () => {
		expect(laneAnchor({ scheduledTime: T0, startedAt: T0 + 2_000 })).toBe(T0);
		// Far behind: anchored at the minute, most runs would be past their aim and go in one burst.
		expect(laneAnchor({ scheduledTime: T0, startedAt: T0 + 30_000 })).toBe(T0 + 30_000);
		expect(laneAnchor({ scheduledTime: T0, startedAt: T0 - 2_000 })).toBe(T0 - 2_000);
		expect(laneAnchor({ scheduledTime: T0, startedAt: T0 + PERIOD_MS })).toBe(T0 + PERIOD_MS);
		// The 4,501st piece of a lane paced at 4,500 a second, phase 7: a second and 7 s in.
		expect(aimedAt(T0, 4_500, 4_500, 7)).toBe(T0 + 8_000);
		expect(delayUntil(T0 + 8_000, T0 + 2_600)).toBe(5);
		expect(delayUntil(T0 + 8_000, T0 + 2_400)).toBe(6);
		expect(delayUntil(T0 + 8_000, T0 + 9_000)).toBe(0);
	});

	it("spreads 100,000 pieces evenly over the seconds (peak/mean ≤ 1.1)", () => {
		const perSecond = new Array<number>(60).fill(0);
		for (let i = 0; i < 100_000; i++) perSecond[phaseSeconds({ space: newSpace(), pieceId: `fid1:${i.toString(36).padStart(43, "x")}` }, 60)]!++;
		const mean = 100_000 / 60;
		expect(Math.max(...perSecond) / mean).toBeLessThanOrEqual(1.1);
		expect(Math.min(...perSecond) / mean).toBeGreaterThanOrEqual(0.9);
	});
});
