/**
 * BENCHMARK BASELINE ONLY, never used by the product: the naive design `npm run bench`
 * compares the scheduler against (issue 4). It is what a first, straightforward version
 * would do:
 * - its tick lists every key and then reads every value (one KV get per piece), and sends
 *   every due piece's message at once, in one burst (no pacing, no delaySeconds);
 * - its consumer, for each message, reads the entry, calls the runtime and writes the entry
 *   back every time, in protocol 1: one request per run (`/v1/run`), held until the run ends,
 *   6 at a time (6 connections per invocation).
 * It reuses the product's key schema, due rule, outcome policy and runtime client, so the
 * two designs differ only in how they use the platform.
 */
import { tickMessage } from "../src/messages";
import { applyOutcome, isDue } from "../src/policy/schedule";
import type { PieceEntry } from "../src/registry/entry";
import { PIECE_PREFIX } from "../src/registry/keys";
import { getEntry, putEntry } from "../src/registry/store";
import { runPiece, type RuntimeEnv } from "../src/runtime/client";
import type { RunMessage } from "../src/schema";
import { forEachLimit } from "../src/util/limit";

/** What the naive tick did. */
export interface NaiveTickSummary {
	listed: number;
	due: number;
	dispatched: number;
}

/** The naive tick: list every key, read every value, send every due piece at once. */
export async function naiveTick(env: Pick<Env, "REGISTRY" | "RUNS">, tickTime: number): Promise<NaiveTickSummary> {
	const summary = { listed: 0, due: 0, dispatched: 0 };
	let cursor: string | undefined;
	const sends: Promise<void>[] = [];
	do {
		const page = await env.REGISTRY.list({ prefix: PIECE_PREFIX, cursor });
		summary.listed += page.keys.length;
		// One KV read per piece: the value holds the state.
		const entries = await Promise.all(page.keys.map((key) => env.REGISTRY.get<PieceEntry>(key.name, "json")));
		const due = entries.filter((entry): entry is PieceEntry => entry !== null && isDue(entry, tickTime));
		summary.due += due.length;
		// One burst: every message now, 100 per sendBatch (the queue's limit), no delay.
		for (let i = 0; i < due.length; i += 100) {
			const batch = due.slice(i, i + 100).map((entry) => ({ body: tickMessage(entry, tickTime), contentType: "json" as const }));
			sends.push(env.RUNS.sendBatch(batch).then(() => void (summary.dispatched += batch.length)));
		}
		cursor = page.list_complete ? undefined : page.cursor;
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
		const { entry: after } = applyOutcome(entry, outcome, { scheduledTime: body.scheduledTime, now: Date.now(), runId: body.runId, durationMs });
		await putEntry(env, after);
		message.ack();
	});
}
