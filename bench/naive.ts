/**
 * BENCHMARK BASELINE ONLY, never used by the product: the naive design `npm run bench`
 * compares the scheduler against. It is a first, straightforward version that could run at
 * the benchmark's sizes, within one invocation's limits:
 * - its tick lists the whole registry with list metadata (one KV list per 1,000 pieces, so
 *   100,000 pieces are 100 of the invocation's 1,000 KV operations; no value is read) and sends
 *   every due piece's message at once, in one burst (no pacing, no delaySeconds);
 * - its consumer, for each message, reads the entry, calls the runtime and writes the entry
 *   back every time, in protocol 1: one request per run (`/v1/run`), held until the run ends,
 *   6 at a time (6 connections per invocation); and it logs as a first version would: the
 *   replaced service's success line and a JSON line per run (two Workers Logs events).
 * It reuses the product's key schema, due rule, outcome policy and runtime client, so the
 * two designs differ only in how they use the platform.
 */
import { tickMessage } from "../src/messages";
import { applyOutcome, isDue } from "../src/policy/schedule";
import { PIECE_PREFIX } from "../src/registry/keys";
import { getEntry, listPieces, putEntry } from "../src/registry/store";
import { runPiece, type RuntimeEnv } from "../src/runtime/client";
import type { RunMessage } from "../src/schema";
import { forEachLimit } from "../src/util/limit";

/** What the naive tick did. */
export interface NaiveTickSummary {
	listed: number;
	due: number;
	dispatched: number;
}

/** The naive tick: list every piece with its metadata, send every due one at once. */
export async function naiveTick(env: Pick<Env, "REGISTRY" | "RUNS">, tickTime: number): Promise<NaiveTickSummary> {
	const summary = { listed: 0, due: 0, dispatched: 0 };
	let cursor: string | undefined;
	const sends: Promise<void>[] = [];
	do {
		const page = await listPieces(env, { prefix: PIECE_PREFIX, cursor });
		summary.listed += page.pieces.length;
		const due = page.pieces.filter((piece) => isDue(piece, tickTime));
		summary.due += due.length;
		// One burst: every message now, 100 per sendBatch (the queue's limit), no delay.
		for (let i = 0; i < due.length; i += 100) {
			const batch = due.slice(i, i + 100).map((piece) => ({ body: tickMessage(piece, tickTime), contentType: "json" as const }));
			sends.push(env.RUNS.sendBatch(batch).then(() => void (summary.dispatched += batch.length)));
		}
		cursor = page.cursor;
	} while (cursor);
	await Promise.all(sends);
	return summary;
}

/** The naive consumer: read, run, write, for every message (6 at once, the connection limit). */
export async function naiveQueue(batch: MessageBatch<unknown>, env: Pick<Env, "REGISTRY"> & RuntimeEnv): Promise<void> {
	await forEachLimit(batch.messages, 6, async (message) => {
		const body = message.body as RunMessage;
		const entry = await getEntry(env, body);
		if (!entry) return message.ack();
		const { outcome, durationMs } = await runPiece(env, body, message.attempts);
		// The naive design takes every answer at face value: no probe, and no skip.
		if (outcome.kind !== "ok" && outcome.kind !== "failed" && outcome.kind !== "unavailable") return message.ack();
		const { entry: after, event } = applyOutcome(entry, outcome, { scheduledTime: body.scheduledTime, now: Date.now(), runId: body.runId, durationMs });
		await putEntry(env, after);
		if (event === "success") console.log(`Successfully executed piece ${body.space}/${body.pieceId}`);
		console.log(JSON.stringify({ event: "run", outcome: event, piece: `${body.space}/${body.pieceId}`, durationMs, status: after.status }));
		message.ack();
	});
}
