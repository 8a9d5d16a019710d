/**
 * BENCHMARK HARNESS ONLY: the fan-out's own CPU time, without the platform. Runs the
 * product's `fanOut` (src/fanout.ts) in Node's V8 over in-memory stand-ins for KV list
 * (pre-built pages of keys and metadata, as `list` returns them) and Queues (`sendBatch` that
 * only counts), with pacing lifted (its sleeps cost wall time, not CPU). What remains is the
 * fan-out's own work per piece: the due check, the message, its size, the phase, batching.
 */
import { fanOut, PLATFORM_LIMITS } from "../src/fanout";
import type { PieceSummary } from "../src/registry/entry";
import { PIECE_PREFIX } from "../src/registry/keys";

export interface FanoutCpu {
	pieces: number;
	dispatched: number;
	cpuMs: number;
	wallMs: number;
}

/** Measures one fan-out over `pieces` due pieces (best of `repeats`, after one warm-up). */
export async function measureFanoutCpu(pieces: number, tickTime: number, repeats = 3): Promise<FanoutCpu> {
	const pages: { keys: { name: string; metadata: PieceSummary }[]; list_complete: boolean; cursor: string }[] = [];
	for (let start = 0; start < pieces; start += 1000) {
		const keys = [];
		for (let i = start; i < Math.min(pieces, start + 1000); i++) {
			const metadata: PieceSummary = { integration: "bench", createdAt: 1000, updatedAt: 1000, disabledAt: 0, lastRun: tickTime - 59_500, status: "Success", failures: 0, nextRunAt: tickTime };
			keys.push({ name: `${PIECE_PREFIX}did:key:z6Mk${String(Math.floor(i / 100)).padStart(44, "1")}/fid1:${String(i).padStart(43, "A")}`, metadata });
		}
		pages.push({ keys, list_complete: start + 1000 >= pieces, cursor: String(pages.length + 1) });
	}
	let dispatched = 0;
	const env = {
		SPREAD_SECONDS: "50",
		REGISTRY: {
			list: async (options: { cursor?: string }) => pages[Number(options.cursor ?? 0)],
		},
		RUNS: {
			sendBatch: async (batch: unknown[]) => {
				dispatched += batch.length;
			},
		},
	} as unknown as Parameters<typeof fanOut>[0];
	const limits = { ...PLATFORM_LIMITS, maxMessagesPerSecond: Number.MAX_SAFE_INTEGER };
	let best: FanoutCpu | null = null;
	for (let round = 0; round <= repeats; round++) {
		dispatched = 0;
		const cpu = process.cpuUsage();
		const wall = performance.now();
		await fanOut(env, tickTime, limits);
		const used = process.cpuUsage(cpu);
		const result = { pieces, dispatched, cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - wall };
		// Round 0 warms the JIT up; keep the best of the rest.
		if (round > 0 && (!best || result.cpuMs < best.cpuMs)) best = result;
	}
	return best!;
}
