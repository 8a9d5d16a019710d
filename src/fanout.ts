import { logError } from "./log";
import { tickMessage } from "./messages";
import { isDue, phaseSeconds, spreadSeconds } from "./policy/schedule";
import { KV_LIST_LIMIT, listPieces, type TickSummary } from "./registry/store";
import type { RunMessage } from "./schema";
import { forEachLimit } from "./util/limit";
import { pacer, realClock, type Clock } from "./util/pace";
import { utf8Length } from "./util/text";

/** The bindings the fan-out needs. */
export type FanoutEnv = Pick<Env, "REGISTRY" | "RUNS"> & Partial<Pick<Env, "SPREAD_SECONDS">>;

/** Queues take at most 100 messages per sendBatch. */
export const SEND_BATCH_MAX_MESSAGES = 100;
/** …and at most 256 KB per sendBatch; we stop well short to leave room for envelopes. */
export const SEND_BATCH_MAX_BYTES = 200 * 1024;
/**
 * One invocation may hold 6 connections at once; sends use at most 5, leaving one spare
 * (for the last-tick write and logs), so nothing queues inside the runtime.
 */
const SEND_CONCURRENCY = 5;
/** What one tick may spend; the defaults are the platform's limits with a margin. */
export interface FanoutLimits {
	/** KV operations: 1,000 per invocation, one of them the last-tick write. */
	maxListCalls: number;
	/** Subrequests: 10,000 per invocation (paid plan); each list and each sendBatch is one. */
	maxSubrequests: number;
	/** A queue takes 5,000 messages per second. */
	maxMessagesPerSecond: number;
}

/**
 * The platform's per-invocation and per-queue limits, with a margin. A tick stops before it
 * would exceed a budget and logs `tick-budget-exhausted`. Every tick lists from the start, so
 * the pieces past the budget (the end of the key space: beyond ≈ 900,000 pieces when all are
 * due, ≈ 990,000 when few are) are not dispatched until the registry shrinks; a registry that
 * large needs sharded fan-out.
 */
export const PLATFORM_LIMITS: FanoutLimits = { maxListCalls: 990, maxSubrequests: 9_900, maxMessagesPerSecond: 4_500 };

/** Subrequests one page can take: its list call and up to 10 sendBatch calls (1,000 / 100). */
const SUBREQUESTS_PER_PAGE = 1 + Math.ceil(KV_LIST_LIMIT / SEND_BATCH_MAX_MESSAGES);

/**
 * The fan-out of one tick: lists the registry page by page (never holding more than one
 * page, so memory stays flat far below the 128 MB isolate limit), and sends one message per
 * enabled piece that is due at `tickTime`, paced below the queue's 5,000 messages per second
 * and delayed by the piece's phase (SPREAD_SECONDS) so the runs spread over the minute.
 * Pieces whose send fails stay due, so the next tick dispatches them. CPU per piece is a
 * metadata check and a small JSON object, well inside the cron's 30 s CPU limit per tick.
 */
export async function fanOut(env: FanoutEnv, tickTime: number, limits: FanoutLimits = PLATFORM_LIMITS, clock: Clock = realClock): Promise<Omit<TickSummary, "ms">> {
	const summary = { scheduledTime: tickTime, listed: 0, due: 0, dispatched: 0, skipped: 0, failed: 0, listCalls: 0, sendCalls: 0 };
	const pace = pacer(limits.maxMessagesPerSecond, clock);
	const spread = spreadSeconds(env.SPREAD_SECONDS);
	let cursor: string | undefined;
	do {
		if (summary.listCalls >= limits.maxListCalls || summary.listCalls + summary.sendCalls + SUBREQUESTS_PER_PAGE > limits.maxSubrequests) {
			logError("tick-budget-exhausted", "registry too large for one invocation: the pieces past this point were not dispatched", { scheduledTime: tickTime, listed: summary.listed });
			break;
		}
		const page = await listPieces(env, { cursor, limit: KV_LIST_LIMIT });
		summary.listCalls++;
		summary.listed += page.pieces.length;
		const due = page.pieces.filter((piece) => isDue(piece, tickTime));
		summary.due += due.length;
		summary.skipped += page.pieces.length - due.length;
		// A page is sent within a second or so (1,000 messages at 4,500 a second), so each
		// message's due time is its phase from now.
		const pageTime = clock.now();
		const batches = chunk(due.map((piece) => tickMessage(piece, tickTime, pageTime + phaseSeconds(piece, spread) * 1000)));
		await forEachLimit(batches, SEND_CONCURRENCY, async (batch) => {
			await pace(batch.length);
			summary.sendCalls++;
			try {
				// Each run is delayed by its piece's phase (≤ 59 s, far below the queue's 24 h limit).
				await env.RUNS.sendBatch(batch.map((body) => ({ body, contentType: "json" as const, delaySeconds: phaseSeconds(body, spread) })));
				summary.dispatched += batch.length;
			} catch (error) {
				summary.failed += batch.length;
				logError("tick-send-failed", error, { scheduledTime: tickTime, messages: batch.length, pieces: preview(batch) });
			}
		});
		cursor = page.cursor;
	} while (cursor);
	return summary;
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
