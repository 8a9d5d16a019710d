import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registered } from "../../src/policy/schedule";
import { laneShards } from "../../src/lanes";
import { pieceKey, shardOf } from "../../src/registry/keys";
import { summarise } from "../../src/registry/store";
import { newPieceId, newSpace } from "../ids";

/*
 * Each lane starts in an invocation of its own, at once: four lanes in workerd with real local
 * queues, each lane's start on its own fan-out queue (bg-piece-fanout-<n>), as wrangler.toml
 * says to configure them. The local broker delivers one batch per queue at a time, so lanes
 * started through one shared queue would run one after another here; through their own queues
 * they overlap. The Worker is the product's handlers in a test harness that paces the fan-out
 * at 100 messages a second (test/node/fixtures/lanes-worker.ts).
 */
const LANES = 4;
const PIECES = 600;
const out = join(process.cwd(), ".wrangler", "test", "lanes");

interface Logged {
	event: string;
	at: number;
	[field: string]: unknown;
}

let mf: Miniflare;
const logged: Logged[] = [];
const pieces = Array.from({ length: PIECES }, () => ({ space: newSpace(), pieceId: newPieceId(), integration: "counter" }));

beforeAll(async () => {
	mkdirSync(out, { recursive: true });
	buildSync({ entryPoints: ["test/node/fixtures/lanes-worker.ts"], outfile: join(out, "worker.mjs"), bundle: true, format: "esm", platform: "browser", conditions: ["workerd", "worker", "browser"], logLevel: "error" });
	const lane = (n: number) => (n === 0 ? "" : `-${n}`);
	const binding = (n: number) => (n === 0 ? "" : `_${n}`);
	mf = new Miniflare(
		convertV4MiniflareOptions({
			log: new Log(LogLevel.NONE),
			// Every console line of the Worker, stamped with when it came out.
			handleStructuredLogs: ({ message }) => {
				for (const line of message.split("\n")) if (line.startsWith("{")) logged.push({ ...JSON.parse(line), at: Date.now() });
			},
			workers: [
				{
					name: "lanes",
					modules: true,
					scriptPath: join(out, "worker.mjs"),
					compatibilityDate: "2026-08-22",
					kvNamespaces: { REGISTRY: "lanes-registry" },
					queueProducers: Object.fromEntries(
						Array.from({ length: LANES }, (_, n) => [
							[`RUNS${binding(n)}`, { queueName: `bg-piece-runs${lane(n)}` }],
							[`FANOUT${binding(n)}`, { queueName: `bg-piece-fanout${lane(n)}` }],
						]).flat(),
					),
					// The fan-out queues' settings are wrangler.toml's (batch 1, no wait).
					queueConsumers: Object.fromEntries(Array.from({ length: LANES }, (_, n) => [`bg-piece-fanout${lane(n)}`, { maxBatchSize: 1, maxBatchTimeout: 0, maxRetries: 2 }])),
					bindings: { SPREAD_SECONDS: "0" },
				},
			],
		}),
	);
	const kv = await mf.getKVNamespace("REGISTRY");
	for (let i = 0; i < PIECES; i += 50) {
		await Promise.all(
			pieces.slice(i, i + 50).map((ref) => {
				const entry = registered(null, ref, 1_000);
				return kv.put(pieceKey(entry), JSON.stringify(entry), { metadata: summarise(entry) });
			}),
		);
	}
}, 60_000);

afterAll(() => mf?.dispose());

describe("lanes", () => {
	it("start each in its own invocation, from their own fan-out queues, at once, and every piece is sent once", async () => {
		const worker = await mf.getWorker();
		const tickTime = Math.floor(Date.now() / 60_000) * 60_000;
		await worker.scheduled({ scheduledTime: new Date(tickTime), cron: "* * * * *" });
		const deadline = Date.now() + 30_000;
		const fanouts = () => logged.filter((l) => l.event === "fanout");
		while (fanouts().length < LANES - 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));

		const tick = logged.find((l) => l.event === "tick")!;
		expect(tick).toMatchObject({ lanes: LANES, handedOver: LANES - 1, failed: 0 });
		// One fan-out invocation per further lane, each delivered from that lane's own queue, none handing over again.
		const byLane = new Map(fanouts().map((f) => [f.lane as number, f]));
		expect(fanouts()).toHaveLength(LANES - 1);
		for (let n = 1; n < LANES; n++) expect(byLane.get(n)).toMatchObject({ lane: n, queue: `bg-piece-fanout-${n}`, continues: false, failed: 0 });
		// Each lane sent exactly its own shards' pieces: lane 0 in the tick's invocation, the others in theirs.
		const inLane = (n: number) => pieces.filter((p) => laneShards(n, LANES).includes(shardOf(p.space))).length;
		expect(tick.dispatched).toBe(inLane(0));
		for (let n = 1; n < LANES; n++) expect(byLane.get(n)!.dispatched).toBe(inLane(n));
		expect([tick, ...byLane.values()].reduce((sum, l) => sum + (l.dispatched as number), 0)).toBe(PIECES);
		// At once: each lane's ≈ 150 sends take over a second at the harness's pace, and every
		// lane began before any of them ended (one after another, they would not overlap).
		const windows = [tick, ...byLane.values()].map((l) => ({ start: l.at - (l.ms as number), end: l.at }));
		expect(Math.min(...windows.map((w) => w.end - w.start))).toBeGreaterThan(900);
		expect(Math.max(...windows.map((w) => w.start))).toBeLessThan(Math.min(...windows.map((w) => w.end)));
	}, 60_000);
});
