import { logError } from "./log";
import { tickMessage } from "./messages";
import { isDue } from "./policy/schedule";
import { KV_LIST_LIMIT, listPieces, type TickSummary } from "./registry/store";
import type { RunMessage } from "./schema";
import { forEachLimit } from "./util/limit";
import { utf8Length } from "./util/text";

/** The bindings the fan-out needs. */
export type FanoutEnv = Pick<Env, "REGISTRY" | "RUNS">;

/** Queues take at most 100 messages per sendBatch. */
export const SEND_BATCH_MAX_MESSAGES = 100;
/** …and at most 256 KB per sendBatch; we stop well short to leave room for envelopes. */
export const SEND_BATCH_MAX_BYTES = 200 * 1024;
/**
 * One invocation may hold 6 connections at once; sends use 5, leaving one for the next KV
 * list so listing and sending overlap without queueing inside the runtime.
 */
const SEND_CONCURRENCY = 5;
/**
 * Per-invocation budgets: 1,000 KV operations (one is the last-tick write) and 10,000
 * subrequests (paid plan). A tick stops before it would exceed either, logs it, and leaves the
 * rest due for the next tick: nothing is lost, but a registry that large needs sharded fan-out.
 */
export const MAX_LIST_CALLS = 990;
export const MAX_SUBREQUESTS = 9_900;

/**
 * The fan-out of one tick: lists the registry page by page (never holding more than one
 * page), and sends one message per enabled piece that is due at `tickTime`. Pieces whose
 * send fails stay due, so the next tick dispatches them.
 */
export async function fanOut(env: FanoutEnv, tickTime: number): Promise<Omit<TickSummary, "ms">> {
	const summary = { scheduledTime: tickTime, listed: 0, due: 0, dispatched: 0, skipped: 0, failed: 0, listCalls: 0, sendCalls: 0 };
	let cursor: string | undefined;
	do {
		if (summary.listCalls >= MAX_LIST_CALLS || summary.listCalls + summary.sendCalls >= MAX_SUBREQUESTS) {
			logError("tick-budget-exhausted", "registry too large for one invocation; the rest stays due", { scheduledTime: tickTime, listed: summary.listed });
			break;
		}
		const page = await listPieces(env, { cursor, limit: KV_LIST_LIMIT });
		summary.listCalls++;
		summary.listed += page.pieces.length;
		const due = page.pieces.filter((piece) => isDue(piece, tickTime));
		summary.due += due.length;
		summary.skipped += page.pieces.length - due.length;
		const batches = chunk(due.map((piece) => tickMessage(piece, tickTime)));
		await forEachLimit(batches, SEND_CONCURRENCY, async (batch) => {
			summary.sendCalls++;
			try {
				await env.RUNS.sendBatch(batch.map((body) => ({ body, contentType: "json" as const })));
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
