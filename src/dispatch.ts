import { CRASH_RETRY_SECONDS, MAX_CONCURRENT_RUNS, UNAVAILABLE_RETRY_SECONDS, admitted, groupByPiece, type ConsumerEnv } from "./delivery";
import { logError, logEvent } from "./log";
import { resolveAnswer } from "./policy/outcome";
import { heartbeatMs } from "./policy/record";
import { logRun, newInvocation, recordAnswer } from "./recorder";
import { dispatchRuns, probeV2 } from "./runtime/dispatch";
import type { RunMessage } from "./schema";
import { forEachLimit } from "./util/limit";

/** When a later run of a piece already in the dispatch comes back (past KV's write interval). */
const SAME_PIECE_RETRY_SECONDS = 2;

/** One admitted message of the batch. */
interface Admitted {
	delivery: Message<unknown>;
	message: RunMessage;
	attempt: number;
}

/*
 * Per invocation (protocol 2): a batch of up to 100 messages costs at most 100 KV reads to
 * admit them (steady pieces: none), one subrequest for the dispatch (and one for a probe), and
 * for the runs not accepted (rare: busy, failed at once, an outage) at most a read and a write
 * each, plus the runtime's health (a read and a write, once): ≤ 302 of the 1,000 KV
 * operations and ≤ 304 of the 10,000 subrequests. KV calls run at most 6 at
 * once (6 connections per invocation), and the dispatch holds one connection for its
 * acknowledgement only, so no run's length ever holds the invocation.
 */

/**
 * The queue consumer for a protocol 2 runtime: admits every message of the batch, sends the
 * admitted runs in one dispatch, and handles each run's acknowledgement on its own. An
 * accepted run is acked at once; its outcome arrives later as a report (src/reports.ts). A
 * run the runtime does not take (busy, failed at once, refused, or the whole dispatch
 * unavailable) is recorded here as under protocol 1.
 */
export async function handleDispatchBatch(batch: MessageBatch<unknown>, env: ConsumerEnv): Promise<void> {
	const invocation = newInvocation(() => probeV2(env));
	const items: Admitted[] = [];
	// One run per piece per dispatch (its oldest): two runs of one piece would run at once and
	// be recorded at once on one KV key. The others come back when this one has been handled:
	// the same run again (a duplicate delivery, a tick fired twice) is dropped, any other is
	// retried shortly, and then meets this run's record, or its busy.
	const groups = groupByPiece(batch.messages);
	for (const group of groups) {
		for (const later of group.slice(1)) {
			if ((later.body as Partial<RunMessage> | null)?.runId === (group[0]!.body as Partial<RunMessage> | null)?.runId) {
				logEvent("run-dropped", { reason: "already in this batch (duplicate delivery)", runId: (later.body as Partial<RunMessage>).runId });
				later.ack();
			} else {
				later.retry({ delaySeconds: SAME_PIECE_RETRY_SECONDS });
			}
		}
	}
	await forEachLimit(groups.map((group) => group[0]!), MAX_CONCURRENT_RUNS, async (delivery) => {
		try {
			const message = await admitted(delivery.body, delivery.attempts, env);
			if (!message) return delivery.ack();
			items.push({ delivery, message, attempt: delivery.attempts });
		} catch (error) {
			crashed(delivery, error);
		}
	});
	if (!items.length) return;

	const started = Date.now();
	const { verdict, durationMs } = await dispatchRuns(env, items);
	let accepted = 0;
	await forEachLimit(items, MAX_CONCURRENT_RUNS, async ({ delivery, message, attempt }) => {
		try {
			const outcome = verdict.kind === "acked" ? verdict.outcomes.get(message.runId)! : verdict.outcome;
			if (outcome.kind === "accepted") {
				accepted++;
				return delivery.ack();
			}
			const answer = await resolveAnswer(outcome, () => invocation.probe(started));
			const recorded = await recordAnswer(env, invocation, message, answer, { attempts: attempt, started, durationMs, heartbeat: heartbeatMs(env.HEARTBEAT_MINUTES) });
			if (recorded.kind === "recorded") logRun(recorded.event, message, recorded.entry?.failures ?? 0, durationMs, recorded.error);
			if (recorded.kind === "recorded" && recorded.retry) {
				// A runtime that asks for time (429 or 503 with Retry-After) gets it, up to 5 minutes.
				const retryAfter = verdict.kind === "unavailable" ? verdict.retryAfterSeconds : null;
				return delivery.retry({ delaySeconds: retryAfter ?? UNAVAILABLE_RETRY_SECONDS });
			}
			delivery.ack();
		} catch (error) {
			crashed(delivery, error);
		}
	});
	// One line per dispatch, not per run: a steady run costs no log event of its own.
	logEvent("dispatch", { runs: items.length, accepted, durationMs, ...(verdict.kind === "unavailable" ? { unavailable: verdict.outcome.reason } : {}) });
}

function crashed(delivery: Message<unknown>, error: unknown): void {
	// A fault of ours (KV down, a bug): retry; after max_retries it rests in the DLQ while the
	// piece, still due, is dispatched again by the next tick.
	logError("run-crashed", error, { messageId: delivery.id, attempts: delivery.attempts });
	delivery.retry({ delaySeconds: CRASH_RETRY_SECONDS });
}
