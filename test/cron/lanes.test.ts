import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { handleFanout, handleScheduled } from "../../src/cron";
import { laneDeadline } from "../../src/fanout";
import { PERIOD_MS } from "../../src/policy/schedule";
import { isFanoutQueue, laneProblems, laneShards, runQueues } from "../../src/lanes";
import { SHARD_COUNT, shardOf } from "../../src/registry/keys";
import { getLastTick } from "../../src/registry/store";
import type { FanoutWork } from "../../src/schema";
import { T0, newSpace, seedPiece } from "../helpers";
import { recordingQueue } from "../recording-queue";

beforeEach(() => reset());

/** Hands fan-out work to handleFanout as the queue would; answers which messages were acked. */
async function deliverFanout(bodies: unknown[], fanoutEnv: Env) {
	const acked: number[] = [];
	const retried: number[] = [];
	const messages = bodies.map((body, i) => ({ id: `f${i}`, timestamp: new Date(), attempts: 1, body, ack: () => acked.push(i), retry: () => retried.push(i) }));
	await handleFanout({ queue: "bg-piece-fanout", messages, ackAll() {}, retryAll() {} } as unknown as MessageBatch, fanoutEnv);
	return { acked, retried };
}

describe("fan-out lanes", () => {
	it("splits the 16 shards among the lanes, each shard in exactly one lane", () => {
		for (const lanes of [1, 2, 4, 8, 16, 3]) {
			const all = Array.from({ length: lanes }, (_, lane) => laneShards(lane, lanes)).flat();
			expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: SHARD_COUNT }, (_, s) => s));
		}
	});

	it("finds the lanes RUNS, RUNS_1, … in order, each with its fan-out queue, stopping at the first gap", () => {
		const [a, b, c, d] = [recordingQueue(), recordingQueue(), recordingQueue(), recordingQueue()];
		const f = recordingQueue();
		expect(runQueues({ RUNS: a } as unknown as Env)).toEqual([a]);
		expect(runQueues({ RUNS: a, RUNS_1: b, FANOUT_1: f, RUNS_2: c, FANOUT_2: f } as unknown as Env)).toEqual([a, b, c]);
		expect(runQueues({ RUNS: a, RUNS_1: b, FANOUT_1: f, RUNS_3: d, FANOUT_3: f } as unknown as Env)).toEqual([a, b]);
		// A run queue without its fan-out queue is no lane, and health says so.
		const half = { RUNS: a, RUNS_1: b, FANOUT_1: f, RUNS_2: c } as unknown as Env;
		expect(runQueues(half)).toEqual([a, b]);
		expect(laneProblems(half)).toEqual([expect.stringMatching(/^RUNS_2 is bound but FANOUT_2 is not: lane 2 is not used \(2 lanes in use\)/)]);
		expect(laneProblems({ RUNS: a, FANOUT_1: f } as unknown as Env)).toEqual([expect.stringMatching(/^FANOUT_1 is bound but RUNS_1 is not/)]);
		expect(laneProblems({ RUNS: a, RUNS_1: b, FANOUT_1: f } as unknown as Env)).toEqual([]);
	});

	it("knows fan-out queues by name: bg-piece-fanout and bg-piece-fanout-1 … -15", () => {
		for (const name of ["bg-piece-fanout", "bg-piece-fanout-1", "bg-piece-fanout-15"]) expect(isFanoutQueue(name)).toBe(true);
		for (const name of ["bg-piece-runs", "bg-piece-runs-1", "bg-piece-fanout-0", "bg-piece-fanout-16", "bg-piece-fanout-01", "bg-piece-fanout-x", "bg-piece-runs-dlq"]) expect(isFanoutQueue(name)).toBe(false);
	});

	it("a tick with two lanes: the tick sends lane 0, starts lane 1 on lane 1's own fan-out queue, and every piece goes exactly once to its lane's queue", async () => {
		const pieces = [];
		for (let i = 0; i < 400; i += 50) pieces.push(...(await Promise.all(Array.from({ length: 50 }, () => seedPiece({ space: newSpace() })))));
		const lane0 = recordingQueue();
		const lane1 = recordingQueue();
		const fanout0 = recordingQueue();
		const fanout1 = recordingQueue();
		const twoLanes = { ...env, RUNS: lane0, RUNS_1: lane1, FANOUT: fanout0, FANOUT_1: fanout1 } as unknown as Env;

		await handleScheduled({ scheduledTime: T0, cron: "* * * * *", noRetry() {} }, twoLanes);
		expect(fanout0.sent).toHaveLength(0);
		expect(fanout1.sent).toHaveLength(1);
		const handedOver = fanout1.sent[0] as unknown as FanoutWork;
		expect(handedOver).toMatchObject({ v: 1, scheduledTime: T0, lane: 1, shard: 1 });
		expect(lane1.sent).toHaveLength(0);
		expect(await getLastTick(env)).toMatchObject({ scheduledTime: T0, lanes: 2, handedOver: 1, dispatched: lane0.sent.length });

		expect(await deliverFanout([handedOver], twoLanes)).toEqual({ acked: [0], retried: [] });
		// Lane 0 lists the even shards, lane 1 the odd ones.
		expect(lane0.sent.every((m) => shardOf(m.space) % 2 === 0)).toBe(true);
		expect(lane1.sent.every((m) => shardOf(m.space) % 2 === 1)).toBe(true);
		const sent = [...lane0.sent, ...lane1.sent].map((m) => `${m.space}/${m.pieceId}`);
		expect(sent).toHaveLength(pieces.length);
		expect(new Set(sent)).toEqual(new Set(pieces.map((p) => `${p.space}/${p.pieceId}`)));
		expect(lane0.sent.length).toBeGreaterThan(100);
		expect(lane1.sent.length).toBeGreaterThan(100);
	});

	it("drops malformed fan-out work without retrying it", async () => {
		const result = await deliverFanout([null, { v: 1, lane: 99 }, "shard 3"], env);
		expect(result).toEqual({ acked: [0, 1, 2], retried: [] });
	});

	it("retries fan-out work whose listing failed", async () => {
		await seedPiece();
		const broken = { ...env, REGISTRY: { list: () => Promise.reject(new Error("injected KV list failure")) } } as unknown as Env;
		const result = await deliverFanout([{ v: 1, scheduledTime: T0, startedAt: Date.now(), lane: 0, shard: 0 }], broken);
		expect(result).toEqual({ acked: [], retried: [0] });
	});
});

describe("a lane's deadline", () => {
	it("is a period after the tick's scheduledTime when the cron fired late, else after it began", () => {
		expect(laneDeadline({ scheduledTime: T0, startedAt: T0 + 7_000 })).toBe(T0 + PERIOD_MS);
		expect(laneDeadline({ scheduledTime: T0, startedAt: T0 })).toBe(T0 + PERIOD_MS);
		// Fired by hand for a time far away (tests, the local ticker's time=): from when it began.
		expect(laneDeadline({ scheduledTime: T0, startedAt: T0 - 5_000 })).toBe(T0 - 5_000 + PERIOD_MS);
		expect(laneDeadline({ scheduledTime: T0, startedAt: T0 + 3 * PERIOD_MS })).toBe(T0 + 4 * PERIOD_MS);
	});
});
