/**
 * BENCHMARK HARNESS ONLY: the fan-out's own CPU time, without the platform. Runs the
 * product's `fanOutLane` (src/fanout.ts, one lane: every shard) in Node's V8 over in-memory stand-ins for KV list
 * (pre-built pages of keys and metadata, as `list` returns them) and Queues (`sendBatch` that
 * only counts), with pacing lifted (its sleeps cost wall time, not CPU). What remains is the
 * fan-out's own work per piece: the due check, the message, its size, the phase, batching.
 */
import { PLATFORM_LIMITS, fanOutLane, laneStart, type FanoutEnv } from "../src/fanout";
import type { PieceSummary } from "../src/registry/entry";
import { pieceKey, shardPrefix } from "../src/registry/keys";

export interface FanoutCpu {
	pieces: number;
	dispatched: number;
	cpuMs: number;
	wallMs: number;
}

/** Measures one fan-out over `pieces` due pieces (best of `repeats`, after one warm-up). */
export async function measureFanoutCpu(pieces: number, tickTime: number, repeats = 3): Promise<FanoutCpu> {
	// The registry as KV would list it: per shard prefix, keys in order, pages of 1,000.
	type Page = { keys: { name: string; metadata: PieceSummary }[]; list_complete: boolean; cursor?: string };
	const byShard = new Map<string, { name: string; metadata: PieceSummary }[]>();
	for (let i = 0; i < pieces; i++) {
		const metadata: PieceSummary = { integration: "bench", createdAt: 1000, updatedAt: 1000, disabledAt: 0, lastRun: tickTime - 59_500, status: "Success", failures: 0, nextRunAt: tickTime };
		const name = pieceKey({ space: `did:key:z6Mk${String(Math.floor(i / 100)).padStart(44, "1")}`, pieceId: `fid1:${String(i).padStart(43, "A")}` });
		const prefix = name.slice(0, shardPrefix(0).length);
		const keys = byShard.get(prefix) ?? [];
		keys.push({ name, metadata });
		byShard.set(prefix, keys);
	}
	const pages = new Map<string, Page>();
	for (const [prefix, keys] of byShard) {
		keys.sort((a, b) => (a.name < b.name ? -1 : 1));
		for (let start = 0; start < keys.length; start += 1000) {
			const more = start + 1000 < keys.length;
			pages.set(`${prefix}#${start}`, { keys: keys.slice(start, start + 1000), list_complete: !more, cursor: more ? String(start + 1000) : undefined });
		}
	}
	const empty: Page = { keys: [], list_complete: true };
	let dispatched = 0;
	const env = {
		SPREAD_SECONDS: "60",
		REGISTRY: {
			list: async (options: { prefix: string; cursor?: string }) => pages.get(`${options.prefix}#${options.cursor ?? 0}`) ?? empty,
		},
		RUNS: {
			sendBatch: async (batch: unknown[]) => {
				dispatched += batch.length;
			},
		},
	} as unknown as FanoutEnv;
	const limits = { ...PLATFORM_LIMITS, maxMessagesPerSecond: Number.MAX_SAFE_INTEGER };
	let best: FanoutCpu | null = null;
	for (let round = 0; round <= repeats; round++) {
		dispatched = 0;
		const cpu = process.cpuUsage();
		const wall = performance.now();
		await fanOutLane(env, laneStart(tickTime, Date.now(), 0), limits);
		const used = process.cpuUsage(cpu);
		const result = { pieces, dispatched, cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - wall };
		// Round 0 warms the JIT up; keep the best of the rest.
		if (round > 0 && (!best || result.cpuMs < best.cpuMs)) best = result;
	}
	return best!;
}
