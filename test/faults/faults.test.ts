import { createExecutionContext, createMessageBatch, createScheduledController, getQueueResult, reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { handleQueue } from "../../src/consumer";

import worker from "../../src/index";
import { PERIOD_MS } from "../../src/policy/schedule";
import type { PieceEntry } from "../../src/registry/entry";
import { getEntry, getLastTick } from "../../src/registry/store";
import type { RunMessage } from "../../src/schema";
import { T0, seedPiece } from "../helpers";
import { fanOutTick, recordingQueue } from "../recording-queue";

beforeEach(() => reset());

/**
 * A FAKE runtime for faults the reference runtime does not have (it is always reachable and
 * well-formed): answers with `respond`, or throws as a refused connection does.
 */
function fakeRuntime(respond: () => Response | Promise<Response>): Fetcher {
	return { fetch: async () => respond(), connect: () => { throw new Error("not used"); } } as unknown as Fetcher;
}
const down = fakeRuntime(() => {
	throw new TypeError("Network connection lost.");
});

/** One tick: the real fan-out (messages recorded), then the consumer on them as one batch. */
async function tick(time: number, runtime: Fetcher | undefined, attempts = 1): Promise<RunMessage[]> {
	const queue = recordingQueue();
	await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, time);
	if (queue.sent.length) {
		const batch = createMessageBatch("bg-piece-runs", queue.sent.map((body, i) => ({ id: `${time}-${i}`, timestamp: time, attempts, body })));
		await handleQueue(batch, { ...env, ...(runtime ? { RUNTIME: runtime } : {}) });
	}
	return queue.sent;
}

async function entries(pieces: PieceEntry[]): Promise<PieceEntry[]> {
	return Promise.all(pieces.map(async (piece) => (await getEntry(env, piece))!));
}

describe("faults lose nothing and disable nothing that did not fail", () => {
	it("the runtime down for ten ticks, then back: nothing counted, status says since when, all run on the next tick", async () => {
		const pieces = await Promise.all(Array.from({ length: 12 }, (_, i) => seedPiece({ integration: i % 3 === 0 ? "fail" : "counter", failures: i % 2 })));
		for (let k = 0; k < 10; k++) {
			const sent = await tick(T0 + k * PERIOD_MS, down, 2);
			expect(sent).toHaveLength(12); // every piece stays due through the outage
		}
		const during = await entries(pieces);
		for (const [i, entry] of during.entries()) {
			expect(entry.failures).toBe(i % 2);
			expect(entry.disabledAt).toBe(0);
			expect(entry.status).toMatch(/^Runtime unavailable since \d{4}-.*runtime unreachable: https:\/\/runtime.internal\/v1\/run: TypeError: Network connection lost\./);
		}
		const since = during[0]!.unavailableSince;
		expect(since).toBeGreaterThan(0);

		await tick(T0 + 10 * PERIOD_MS, undefined);
		const after = await entries(pieces);
		for (const [i, entry] of after.entries()) {
			expect(entry.unavailableSince).toBe(0);
			if (i % 3 === 0) expect(entry).toMatchObject({ status: "example failure: the fail piece raised an error", failures: (i % 2) + 1, disabledAt: 0 });
			else expect(entry).toMatchObject({ status: "Success", failures: 0, nextRunAt: T0 + 11 * PERIOD_MS });
		}
	});

	it("garbage from the runtime: a bare error page or a 2xx of junk disables nothing and fakes no success", async () => {
		const piece = await seedPiece();
		for (let k = 0; k < 4; k++) await tick(T0 + k * PERIOD_MS, fakeRuntime(() => new Response("<html>oops</html>", { status: 418 })), 2);
		expect(await getEntry(env, piece)).toMatchObject({ failures: 0, disabledAt: 0 });
		expect((await getEntry(env, piece))!.status).toContain("not a piece runtime's answer");

		await tick(T0 + 5 * PERIOD_MS, fakeRuntime(() => new Response("\u0000\u0001 not json", { status: 200, headers: { "bg-protocol": "1" } })));
		expect(await getEntry(env, piece)).toMatchObject({ failures: 0, disabledAt: 0, lastRun: 0 });
		expect((await getEntry(env, piece))!.status).toContain("with a body that is not a JSON object");
	});

	it("a tick failing half-way (KV listing breaks) is followed by a tick that completes", async () => {
		await Promise.all(Array.from({ length: 1_500 }, () => seedPiece()));
		let lists = 0;
		const breaking: KVNamespace = new Proxy(env.REGISTRY, {
			get(target, prop) {
				if (prop === "list") return (options: KVNamespaceListOptions) => (++lists === 2 ? Promise.reject(new Error("injected KV list failure")) : target.list(options));
				const value = Reflect.get(target, prop);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		const half = recordingQueue();
		await expect(fanOutTick({ REGISTRY: breaking, RUNS: half as unknown as Queue }, T0)).rejects.toThrow("injected KV list failure");
		// The first shard's pieces were sent before the second list call broke.
		expect(half.sent.length).toBeGreaterThan(0);
		expect(half.sent.length).toBeLessThan(1_500);

		const next = recordingQueue();
		const summary = await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: next as unknown as Queue }, T0 + PERIOD_MS);
		expect(summary).toMatchObject({ listed: 1_500, dispatched: 1_500, failed: 0 });
	});

	it("a scheduled handler whose fan-out throws fails the tick; the next tick records its summary", async () => {
		await seedPiece();
		const broken = { ...env, REGISTRY: new Proxy(env.REGISTRY, { get: (t, p) => (p === "list" ? () => Promise.reject(new Error("injected")) : Reflect.get(t, p)?.bind?.(t) ?? Reflect.get(t, p)) }) };
		await expect(worker.scheduled(createScheduledController({ scheduledTime: T0 }), broken)).rejects.toThrow("injected");
		await worker.scheduled(createScheduledController({ scheduledTime: T0 + PERIOD_MS }), env);
		expect(await getLastTick(env)).toMatchObject({ scheduledTime: T0 + PERIOD_MS, dispatched: 1 });
	});

	it("retried messages of a crashed batch run once when redelivered", async () => {
		const pieces = await Promise.all(Array.from({ length: 5 }, () => seedPiece()));
		const queue = recordingQueue();
		await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, T0);
		let puts = 0;
		const crashing: KVNamespace = new Proxy(env.REGISTRY, {
			get(target, prop) {
				if (prop === "put") return (...args: Parameters<KVNamespace["put"]>) => (++puts === 3 ? Promise.reject(new Error("injected crash")) : target.put(...args));
				const value = Reflect.get(target, prop);
				return typeof value === "function" ? value.bind(target) : value;
			},
		});
		const first = createMessageBatch("bg-piece-runs", queue.sent.map((body, i) => ({ id: `c${i}`, timestamp: T0, attempts: 1, body })));
		const ctx = createExecutionContext();
		await handleQueue(first, { ...env, REGISTRY: crashing });
		const result = await getQueueResult(first, ctx);
		expect(result.retryMessages).toHaveLength(1);
		expect(result.explicitAcks).toHaveLength(4);

		const retried = queue.sent.filter((_, i) => result.retryMessages.some((m) => m.msgId === `c${i}`));
		const again = createMessageBatch("bg-piece-runs", queue.sent.map((body, i) => ({ id: `r${i}`, timestamp: T0, attempts: 2, body })));
		await handleQueue(again, env);
		const after = await entries(pieces);
		expect(after.every((e) => e.status === "Success" && e.nextRunAt === T0 + PERIOD_MS)).toBe(true);
		// The four that had run were dropped as duplicates; only the crashed one ran again.
		const counts = await Promise.all(pieces.map(async (p) => (await (await env.RUNTIME!.fetch(`https://runtime.internal/counts/${p.space}/${p.pieceId}`)).json<{ count: number }>()).count));
		expect(counts.reduce((a, b) => a + b, 0)).toBe(5 + retried.length);
	});
});
