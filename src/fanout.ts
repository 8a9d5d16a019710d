import { laneShards, runQueues } from "./lanes";
import { logError, logEvent } from "./log";
import { tickMessage } from "./messages";
import { PERIOD_MS, isDue, phaseSeconds, spreadSeconds } from "./policy/schedule";
import { shardPrefix } from "./registry/keys";
import { KV_LIST_LIMIT, listPieces, type FanoutCounts } from "./registry/store";
import type { FanoutWork, RunMessage } from "./schema";
import { forEachLimit } from "./util/limit";
import { pacer, realClock, type Clock } from "./util/pace";
import { utf8Length } from "./util/text";

/** The bindings the fan-out needs: the registry and the run queues (RUNS, RUNS_1, …). */
export type FanoutEnv = Pick<Env, "REGISTRY" | "RUNS"> & Partial<Pick<Env, "SPREAD_SECONDS">>;

/** Queues take at most 100 messages per sendBatch. */
export const SEND_BATCH_MAX_MESSAGES = 100;
/** …and at most 256 KB per sendBatch; we stop well short to leave room for envelopes. */
export const SEND_BATCH_MAX_BYTES = 200 * 1024;
/**
 * One invocation may hold 6 connections at once; sends use at most 5, leaving one spare
 * (for the list of the next page, the hand-over and logs), so nothing queues in the runtime.
 */
const SEND_CONCURRENCY = 5;

/** What one fan-out invocation may spend; the defaults are the platform's limits with a margin. */
export interface FanoutLimits {
	/** KV operations: 1,000 per invocation, a few of them the tick's own (last-tick write). */
	maxListCalls: number;
	/** Subrequests: 10,000 per invocation (paid plan); each list and each sendBatch is one. */
	maxSubrequests: number;
	/** A queue takes 5,000 messages per second; one lane is the only sender to its queue. */
	maxMessagesPerSecond: number;
}

/** The platform's per-invocation and per-queue limits, with a margin. */
export const PLATFORM_LIMITS: FanoutLimits = { maxListCalls: 990, maxSubrequests: 9_900, maxMessagesPerSecond: 4_500 };

/** Subrequests one page can take: its list call and up to 10 sendBatch calls (1,000 / 100). */
const SUBREQUESTS_PER_PAGE = 1 + Math.ceil(KV_LIST_LIMIT / SEND_BATCH_MAX_MESSAGES);

/** What one fan-out invocation did, and for which lane. */
export interface FanoutSummary extends FanoutCounts {
	lane: number;
}

/** A fan-out invocation's summary, and where the lane goes on if it ran out of budget. */
export interface FanoutResult extends FanoutSummary {
	/** The rest of the lane, for the next invocation; null when the lane is done (or abandoned). */
	next: FanoutWork | null;
}

/**
 * How late a cron may fire and still have its lane planned from its scheduledTime. Runs aimed
 * before the moment they are sent go at once, so a plan anchored a long way back would send
 * them in a burst; past this, the plan starts when the tick began (every piece's period moves
 * once, by the lateness) and the spread holds. At 5 s at most ≈ 1% of a lane's runs go early.
 */
const ANCHOR_TOLERANCE_MS = 5_000;

/**
 * The instant a lane's plan counts from: its tick's scheduledTime when the cron fired on time
 * or a little late (under ANCHOR_TOLERANCE_MS: so a late cron moves no piece's period), else
 * when the tick began (a cron far behind, or a tick fired by hand for another time).
 */
export function laneAnchor(work: Pick<FanoutWork, "scheduledTime" | "startedAt">): number {
	const late = work.startedAt - work.scheduledTime;
	return late >= 0 && late < ANCHOR_TOLERANCE_MS ? work.scheduledTime : work.startedAt;
}

/**
 * When a lane must stop sending: a period after its tick, when the next tick's lane starts on
 * the same shards. That lane starts a period after its scheduledTime, so a cron that fired late
 * counts from its scheduledTime (when the lateness is under a period; a tick fired by hand for
 * another time counts from when it began).
 */
export function laneDeadline(work: Pick<FanoutWork, "scheduledTime" | "startedAt">): number {
	const late = work.startedAt - work.scheduledTime;
	return (late > 0 && late < PERIOD_MS ? work.scheduledTime : work.startedAt) + PERIOD_MS;
}

/**
 * When the run of the lane's `position`-th due piece is aimed to arrive: the lane's anchor,
 * plus when the lane's pace plans to send it (position ÷ messages a second), plus its phase.
 * Each term is the same every tick for a piece that keeps its place, so its period stays 60 s
 * however the fan-out's own progress varies from tick to tick.
 */
export function aimedAt(anchor: number, position: number, perSecond: number, phase: number): number {
	return anchor + Math.floor((position * 1000) / perSecond) + phase * 1000;
}

/**
 * The delaySeconds that delivers a message sent `now` at `aimedAt`: whole seconds, rounded to
 * the nearest (±0.5 s), 0 for a message already behind its aim. At most a phase plus a lane's
 * planned sending (< 2 min), far inside the queue's 12 h limit, which the cap restates.
 */
export function delayUntil(aimed: number, now: number): number {
	return Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.round((aimed - now) / 1000)));
}

/** Queues accept delaySeconds up to 12 hours. */
const MAX_DELAY_SECONDS = 12 * 60 * 60;

/** Where a tick's lane starts: its first shard, from the top. */
export function laneStart(scheduledTime: number, startedAt: number, lane: number): FanoutWork {
	return { v: 1, scheduledTime, startedAt, lane, shard: lane };
}

/**
 * Fans out one lane of a tick from `work` (a shard and a cursor in it): lists the lane's
 * shards page by page (never holding more than one page, so memory stays flat far below the
 * 128 MB isolate limit), and sends one message per enabled piece that is due at the tick to
 * the lane's run queue, paced below the queue's 5,000 messages per second. Each run is aimed
 * at the same point of every minute (aimedAt: its place in the lane's paced plan, plus its
 * piece's phase over SPREAD_SECONDS, so the runs spread over the minute) and delayed from when
 * its batch goes to reach it. Pieces whose send fails stay due, so the next tick dispatches them.
 *
 * Before each page it checks the invocation's budget (≤ 990 list calls, ≤ 9,900 subrequests
 * counting the page's list and up to 10 sends): where the budget ends, it returns the position
 * as `next` for another invocation to carry on from. A lane still sending a period after its
 * tick began is abandoned (`fanout-overrun`): the next tick's lane covers the same shards, and
 * two senders would break the queue's rate. CPU per piece is a metadata check and a small
 * JSON object (≈ 5 µs), far inside an invocation's 30 s CPU.
 */
export async function fanOutLane(env: FanoutEnv, work: FanoutWork, limits: FanoutLimits = PLATFORM_LIMITS, clock: Clock = realClock): Promise<FanoutResult> {
	const queues = runQueues(env);
	const queue = queues[work.lane];
	const result: FanoutResult = { scheduledTime: work.scheduledTime, lane: work.lane, listed: 0, due: 0, dispatched: 0, skipped: 0, failed: 0, listCalls: 0, sendCalls: 0, next: null };
	if (!queue) {
		logError("fanout-lane-missing", `no lane ${work.lane}: RUNS_${work.lane} and FANOUT_${work.lane} are not both bound`, { scheduledTime: work.scheduledTime });
		return result;
	}
	const pace = pacer(limits.maxMessagesPerSecond, clock);
	const spread = spreadSeconds(env.SPREAD_SECONDS);
	const shards = laneShards(work.lane, queues.length).filter((shard) => shard >= work.shard);
	const anchor = laneAnchor(work);
	let position = work.position ?? 0;
	let cursor = work.cursor;
	for (const shard of shards) {
		do {
			if (clock.now() >= laneDeadline(work)) {
				logError("fanout-overrun", "a lane is still sending a period after its tick: add a lane (RUNS_n), see docs/performance.md", { lane: work.lane, shard, listed: result.listed });
				return result;
			}
			if (result.listCalls >= limits.maxListCalls || result.listCalls + result.sendCalls + SUBREQUESTS_PER_PAGE > limits.maxSubrequests) {
				return { ...result, next: { ...work, shard, cursor, position } };
			}
			const page = await listPieces(env, { prefix: shardPrefix(shard), cursor, limit: KV_LIST_LIMIT });
			result.listCalls++;
			result.listed += page.pieces.length;
			const due = page.pieces.filter((piece) => isDue(piece, work.scheduledTime));
			result.due += due.length;
			result.skipped += page.pieces.length - due.length;
			// Each run is aimed at a fixed point of the minute (its place in the lane's plan and
			// its phase), and delayed from when its batch actually goes to reach it.
			const first = position;
			const batches = chunk(due.map((piece, i) => tickMessage(piece, work.scheduledTime, aimedAt(anchor, first + i, limits.maxMessagesPerSecond, phaseSeconds(piece, spread)))));
			position += due.length;
			await forEachLimit(batches, SEND_CONCURRENCY, async (batch) => {
				await pace(batch.length);
				result.sendCalls++;
				const now = clock.now();
				try {
					await queue.sendBatch(batch.map((body) => ({ body, contentType: "json" as const, delaySeconds: delayUntil(body.dueAt!, now) })));
					result.dispatched += batch.length;
				} catch (error) {
					result.failed += batch.length;
					logError("tick-send-failed", error, { scheduledTime: work.scheduledTime, lane: work.lane, messages: batch.length, pieces: preview(batch) });
				}
			});
			cursor = page.cursor;
		} while (cursor);
	}
	return result;
}

/** Logs what one fan-out invocation did, and from which fan-out queue it was started. */
export function logFanout(result: FanoutResult, ms: number, queue: string): void {
	const { next, ...summary } = result;
	logEvent("fanout", { ...summary, queue, ms, continues: next !== null });
}

/** Splits messages into sendBatch-sized groups: ≤ 100 messages and ≤ SEND_BATCH_MAX_BYTES each. */
export function chunk(messages: RunMessage[]): RunMessage[][] {
	const batches: RunMessage[][] = [];
	let current: RunMessage[] = [];
	let bytes = 0;
	for (const message of messages) {
		const size = utf8Length(JSON.stringify(message));
		if (current.length === SEND_BATCH_MAX_MESSAGES || (current.length > 0 && bytes + size > SEND_BATCH_MAX_BYTES)) {
			batches.push(current);
			current = [];
			bytes = 0;
		}
		current.push(message);
		bytes += size;
	}
	if (current.length) batches.push(current);
	return batches;
}

function preview(batch: RunMessage[]): string[] {
	return batch.slice(0, 3).map((m) => `${m.space}/${m.pieceId}`);
}
