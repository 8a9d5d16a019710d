import { createScheduledController, reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { PLATFORM_LIMITS, fanOut } from "../../src/fanout";
import worker from "../../src/index";
import { PERIOD_MS, phaseSeconds } from "../../src/policy/schedule";
import { getEntry, getLastTick } from "../../src/registry/store";
import { T0, eventually, fireTick, newSpace, runCount, seedPiece } from "../helpers";
import { recordingQueue } from "../recording-queue";

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
	it("sends exactly one message per enabled, due piece past 1,000 keys, and skips the rest", async () => {
		const pieces = await seedMany(2_150, (i) => (i % 20 === 0 ? { disabledAt: 5 } : i % 20 === 1 ? { nextRunAt: T0 + PERIOD_MS } : i % 20 === 2 ? { nextRunAt: T0 } : {}));
		const queue = recordingQueue();
		const summary = await fanOut({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, T0);

		const due = pieces.filter((p) => p.disabledAt === 0 && p.nextRunAt <= T0);
		expect(due.length).toBeGreaterThan(1_900);
		expect(summary).toMatchObject({ listed: 2_150, due: due.length, dispatched: due.length, skipped: 2_150 - due.length, failed: 0, listCalls: 3 });
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
		const first = await fanOut({ REGISTRY: env.REGISTRY, RUNS: failing as unknown as Queue }, T0);
		expect(first.failed).toBe(100);
		expect(first.dispatched).toBe(150);

		const next = recordingQueue();
		const second = await fanOut({ REGISTRY: env.REGISTRY, RUNS: next as unknown as Queue }, T0 + PERIOD_MS);
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
	it("stops before the KV-operation budget; the pieces it did not reach are still due for a tick with room", async () => {
		await seedMany(2_500, () => ({}));
		const queue = recordingQueue();
		const limits = { ...PLATFORM_LIMITS, maxListCalls: 2 };
		const summary = await fanOut({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, T0, limits);
		expect(summary).toMatchObject({ listCalls: 2, listed: 2_000, dispatched: 2_000 });

		const rest = await fanOut({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, T0 + PERIOD_MS);
		expect(rest.dispatched).toBe(2_500);
	});

	it("stops before the subrequest budget, counting a page's list and sends", async () => {
		await seedMany(2_500, () => ({}));
		const queue = recordingQueue();
		// Two full pages take 2 lists + 20 sends = 22 subrequests; a third page could take 11 more.
		const summary = await fanOut({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, T0, { ...PLATFORM_LIMITS, maxSubrequests: 32 });
		expect(summary.listCalls + summary.sendCalls).toBeLessThanOrEqual(32);
		expect(summary).toMatchObject({ listCalls: 2, sendCalls: 20, dispatched: 2_000 });
	});

	it("paces sends below the queue's messages-per-second limit", async () => {
		await seedMany(1_000, () => ({}));
		const queue = recordingQueue();
		let now = 0;
		const sleeps: number[] = [];
		const clock = { now: () => now, sleep: async (ms: number) => void (sleeps.push(ms), (now += ms)) };
		const summary = await fanOut({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, T0, { ...PLATFORM_LIMITS, maxMessagesPerSecond: 300 }, clock);
		expect(summary.dispatched).toBe(1_000);
		// 1,000 messages at 300 a second: three full seconds of waiting.
		expect(sleeps.reduce((a, b) => a + b, 0)).toBe(3_000);
	});
});

describe("load spreading", () => {
	it("delays each piece's run by its stable phase, the same every tick", async () => {
		const pieces = await seedMany(300, () => ({}));
		const first = recordingQueue();
		const second = recordingQueue();
		const spreadEnv = { REGISTRY: env.REGISTRY, SPREAD_SECONDS: "50" };
		await fanOut({ ...spreadEnv, RUNS: first as unknown as Queue }, T0);
		await fanOut({ ...spreadEnv, RUNS: second as unknown as Queue }, T0 + PERIOD_MS);
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
		await fanOut({ REGISTRY: env.REGISTRY, SPREAD_SECONDS: "0", RUNS: flat as unknown as Queue }, T0 + 2 * PERIOD_MS);
		expect(new Set(flat.delays)).toEqual(new Set([0]));
	});

	it("spreads 100,000 pieces evenly over the seconds (peak/mean ≤ 1.1)", () => {
		const perSecond = new Array<number>(50).fill(0);
		for (let i = 0; i < 100_000; i++) perSecond[phaseSeconds({ space: newSpace(), pieceId: `fid1:${i.toString(36).padStart(43, "x")}` }, 50)]!++;
		const mean = 100_000 / 50;
		expect(Math.max(...perSecond) / mean).toBeLessThanOrEqual(1.1);
		expect(Math.min(...perSecond) / mean).toBeGreaterThanOrEqual(0.9);
	});
});
