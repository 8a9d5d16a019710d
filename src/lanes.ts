import { SHARD_COUNT } from "./registry/keys";
import type { RunMessage } from "./schema";

/*
 * Fan-out lanes. One queue takes 5,000 messages a second (300,000 a minute), so a registry
 * larger than ≈ 225,000 pieces cannot be dispatched through one queue within the minute. A
 * lane is one run queue (producer binding RUNS, RUNS_1, RUNS_2, …, each with this Worker as
 * its consumer) plus the fan-out that fills it: lane l lists shards l, l + L, l + 2L, … (L
 * lanes) one after another, in one invocation or a chain of them, so each queue has exactly
 * one sender at a time and its pacing holds. The default deployment has one lane.
 */

/** The queue that carries fan-out hand-overs (wrangler.toml); its consumer is handleFanout. */
export const FANOUT_QUEUE = "bg-piece-fanout";

/** The run queues bound to this Worker: RUNS, then RUNS_1, RUNS_2, … while they exist. */
export function runQueues(env: Pick<Env, "RUNS">): Queue<RunMessage>[] {
	const queues: Queue<RunMessage>[] = [env.RUNS as Queue<RunMessage>];
	for (let lane = 1; lane < SHARD_COUNT; lane++) {
		const queue = (env as unknown as Record<string, Queue<RunMessage> | undefined>)[`RUNS_${lane}`];
		if (!queue) break;
		queues.push(queue);
	}
	return queues;
}

/** The shards lane `lane` of `lanes` lists, in order. */
export function laneShards(lane: number, lanes: number): number[] {
	const shards: number[] = [];
	for (let shard = lane; shard < SHARD_COUNT; shard += lanes) shards.push(shard);
	return shards;
}
