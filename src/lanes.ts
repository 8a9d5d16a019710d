import { SHARD_COUNT } from "./registry/keys";
import type { FanoutWork, RunMessage } from "./schema";

/*
 * Fan-out lanes. One queue takes 5,000 messages a second (300,000 a minute), so a registry
 * larger than ≈ 225,000 pieces cannot be dispatched through one queue within the minute. A
 * lane is one run queue (producer binding RUNS, RUNS_1, RUNS_2, …, each with this Worker as
 * its consumer) plus the fan-out that fills it: lane l lists shards l, l + L, l + 2L, … (L
 * lanes) one after another, in one invocation or a chain of them, so each queue has exactly
 * one sender at a time and its pacing holds. The default deployment has one lane.
 *
 * Each lane's fan-out has a queue of its own too (FANOUT for lane 0, FANOUT_1, FANOUT_2, …):
 * the tick starts lane l with one message on lane l's fan-out queue, and the lane's hand-overs
 * go there as well. Every queue with a consumer and a backlog runs at least one consumer
 * invocation, independently of every other queue, so every lane starts at once in its own
 * invocation. On one shared queue they would rest on its consumers scaling out, which is
 * re-checked only after a batch ends and has no published rate (docs/performance.md, "Lanes").
 */

/** The fan-out queue of lane 0 (wrangler.toml); lane n's is `bg-piece-fanout-<n>`. */
export const FANOUT_QUEUE = "bg-piece-fanout";

/** Whether a queue's messages are fan-out work (lane starts and hand-overs) rather than runs. */
export function isFanoutQueue(name: string): boolean {
	return name === FANOUT_QUEUE || /^bg-piece-fanout-(?:[1-9]|1[0-5])$/.test(name);
}

type Bindings = Record<string, Queue<unknown> | undefined>;

/**
 * How many lanes are usable: lane 0 (RUNS), then each n = 1, 2, … whose run queue RUNS_n and
 * fan-out queue FANOUT_n are both bound, up to the first that is not.
 */
function laneCount(env: Pick<Env, "RUNS">): number {
	const bindings = env as unknown as Bindings;
	let lanes = 1;
	while (lanes < SHARD_COUNT && bindings[`RUNS_${lanes}`] && bindings[`FANOUT_${lanes}`]) lanes++;
	return lanes;
}

/** The run queues of the usable lanes: RUNS, then RUNS_1, RUNS_2, … */
export function runQueues(env: Pick<Env, "RUNS">): Queue<RunMessage>[] {
	const bindings = env as unknown as Bindings;
	return Array.from({ length: laneCount(env) }, (_, lane) => (lane === 0 ? env.RUNS : bindings[`RUNS_${lane}`]) as Queue<RunMessage>);
}

/** Lane `lane`'s fan-out queue: FANOUT for lane 0, FANOUT_<n> for lane n. */
export function fanoutQueue(env: Pick<Env, "FANOUT">, lane: number): Queue<FanoutWork> | undefined {
	return (lane === 0 ? env.FANOUT : (env as unknown as Bindings)[`FANOUT_${lane}`]) as Queue<FanoutWork> | undefined;
}

/**
 * What is wrong with the lane bindings, for health: a RUNS_n without its FANOUT_n (or the
 * reverse) ends the usable lanes there, so its shards go to the lanes before it.
 */
export function laneProblems(env: Pick<Env, "RUNS">): string[] {
	const bindings = env as unknown as Bindings;
	const lanes = laneCount(env);
	if (lanes >= SHARD_COUNT) return [];
	const runs = Boolean(bindings[`RUNS_${lanes}`]);
	const fanout = Boolean(bindings[`FANOUT_${lanes}`]);
	if (runs === fanout) return [];
	const [bound, missing] = runs ? [`RUNS_${lanes}`, `FANOUT_${lanes}`] : [`FANOUT_${lanes}`, `RUNS_${lanes}`];
	return [`${bound} is bound but ${missing} is not: lane ${lanes} is not used (${lanes} lane${lanes === 1 ? "" : "s"} in use); bind both (wrangler.toml, "More lanes")`];
}

/** The shards lane `lane` of `lanes` lists, in order. */
export function laneShards(lane: number, lanes: number): number[] {
	const shards: number[] = [];
	for (let shard = lane; shard < SHARD_COUNT; shard += lanes) shards.push(shard);
	return shards;
}
