import { CRASH_RETRY_SECONDS, MAX_CONCURRENT_RUNS, UNAVAILABLE_RETRY_SECONDS, admitted, groupByPiece, pauseUntil, type ConsumerEnv } from "./delivery";
import { handleDispatchBatch } from "./dispatch";
import { logError, logEvent } from "./log";
import { resolveAnswer } from "./policy/outcome";
import { heartbeatMs } from "./policy/record";
import { recordAnswer, logRun, newInvocation, type Invocation } from "./recorder";
import { KV_WRITE_INTERVAL_MS } from "./registry/store";
import { PROBE_TIMEOUT_MS, probeRuntime, runPiece, runTimeoutMs } from "./runtime/client";
import { runtimeProtocol } from "./runtime/dispatch";
import type { RunMessage } from "./schema";
import { forEachLimit } from "./util/limit";

/*
 * Per invocation (protocol 1), a batch of 100 (wrangler.toml) costs at most 100 × 3 = 300 KV
 * operations (read, re-read, write: the worst case, when every run changes its piece), plus 2
 * for the runtime's health (read, write) once per invocation, and 100 runtime calls plus one
 * liveness probe a minute: inside 1,000 KV operations and 10,000 subrequests. Steady runs
 * cost none.
 */

/** A consumer invocation may run 15 minutes (wall clock). */
export const INVOCATION_WALL_MS = 15 * 60_000;
/**
 * No run starts later than this after the invocation began, so that it ends (its timeout, a
 * liveness probe, the writes) inside the 15-minute wall: with the default 10-minute timeout,
 * about 4 minutes; the rest of the batch is handed back to the queue at once.
 */
export function batchBudgetMs(env: Pick<Env, "RUNTIME_TIMEOUT_MS">): number {
	return INVOCATION_WALL_MS - runTimeoutMs(env) - PROBE_TIMEOUT_MS - 30_000;
}
/** What became of one message. */
export type Disposition = "ran" | "retry" | "dropped";

/**
 * The queue consumer: handles each message on its own, acking or retrying it individually,
 * so one bad message never holds up or re-runs the rest of the batch. Messages for the same
 * piece run one after the other (in scheduledTime order), so a piece never runs twice at
 * once within a batch and a later message sees the earlier one's result.
 */
export async function handleQueue(batch: MessageBatch<unknown>, env: ConsumerEnv, now: () => number = Date.now): Promise<void> {
	// Protocol 2: one dispatch for the whole batch, acknowledged at once (src/dispatch.ts).
	if (runtimeProtocol(env) === "2") return handleDispatchBatch(batch, env);
	const deadline = now() + batchBudgetMs(env);
	const invocation = newInvocation(() => probeRuntime(env));
	await forEachLimit(groupByPiece(batch.messages), MAX_CONCURRENT_RUNS, async (group) => {
		let previousEnd = -Infinity;
		const handled = new Set<unknown>();
		for (const message of group) {
			// Past the budget, hand the rest back to the queue rather than outlive the invocation.
			if (now() > deadline) {
				message.retry({ delaySeconds: 0 });
				continue;
			}
			// The same run twice in one batch (a duplicate delivery, a tick fired twice): once.
			const runId = (message.body as Partial<RunMessage> | null)?.runId;
			if (runId !== undefined && handled.has(runId)) {
				logEvent("run-dropped", { reason: "already in this batch (duplicate delivery)", runId });
				message.ack();
				continue;
			}
			handled.add(runId);
			// Each run ends with a write of the piece's key: starting the next run of the same
			// piece a second after the last one ended keeps its writes a second apart.
			await pauseUntil(previousEnd + KV_WRITE_INTERVAL_MS);
			await handleDelivery(message, env, invocation);
			previousEnd = Date.now();
		}
	});
}

async function handleDelivery(message: Message<unknown>, env: ConsumerEnv, invocation: Invocation): Promise<void> {
	try {
		const disposition = await handleMessage(message.body, message.attempts, env, invocation);
		if (disposition === "retry") message.retry({ delaySeconds: UNAVAILABLE_RETRY_SECONDS });
		else message.ack();
	} catch (error) {
		// A fault of ours (KV down, a bug): retry; after max_retries it rests in the DLQ
		// while the piece, still due, is dispatched again by the next tick.
		logError("run-crashed", error, { messageId: message.id, attempts: message.attempts });
		message.retry({ delaySeconds: CRASH_RETRY_SECONDS });
	}
}


/**
 * Handles one message body (protocol 1): the straight line of I/O around the decisions of
 * src/policy/decide.ts. Validate; admit (reading the entry only if told to); run; resolve
 * silence and replay refusals with a liveness probe; record (src/recorder.ts).
 */
export async function handleMessage(body: unknown, attempts: number, env: ConsumerEnv, invocation: Invocation = newInvocation(() => probeRuntime(env))): Promise<Disposition> {
	const message = await admitted(body, attempts, env);
	if (!message) return "dropped";

	const started = Date.now();
	const { outcome, durationMs } = await runPiece(env, message, attempts);
	// Silence is the piece's, and a replay refusal a duplicate, only if the runtime answers a
	// liveness probe (src/policy/outcome.ts); no other answer sends one.
	const answer = await resolveAnswer(outcome, () => invocation.probe(started));
	const recorded = await recordAnswer(env, invocation, message, answer, { attempts, started, durationMs, heartbeat: heartbeatMs(env.HEARTBEAT_MINUTES) });
	if (recorded.kind === "dropped") return "dropped";
	logRun(recorded.event, message, recorded.entry?.failures ?? 0, durationMs, recorded.error);
	return recorded.retry ? "retry" : recorded.event === "unavailable" ? "dropped" : "ran";
}

