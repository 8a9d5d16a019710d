import { PLATFORM_LIMITS, fanOutLane, laneStart, logFanout, type FanoutLimits, type FanoutResult } from "./fanout";
import { fanoutQueue, runQueues } from "./lanes";
import { logError, logEvent } from "./log";
import { HOUR_MS, tickTimeProblem } from "./policy/schedule";
import { getLastTick, putLastTick, type TickSummary } from "./registry/store";
import { fanoutWorkSchema, firstIssue } from "./schema";
import { forEachLimit } from "./util/limit";

/**
 * The Cron Trigger (`* * * * *`): one fan-out per tick. The tick's scheduledTime is the
 * scheduler's clock: due times are compared against it, so a tick fired by hand with `time=`
 * moves time for everything it dispatches. Lanes other than the first start at once in their
 * own invocations, each on its own fan-out queue (src/lanes.ts); the tick fans out the first
 * lane itself and hands over whatever its budget does not reach. `limits` are the platform's
 * (a bench paces its shards of one lane with its own).
 */
export async function handleScheduled(controller: ScheduledController, env: Env, limits: FanoutLimits = PLATFORM_LIMITS): Promise<void> {
	const startedAt = Date.now();
	// Normalised to ms: some callers (service-binding `scheduled()`) hand over a Date.
	const tickTime = new Date(controller.scheduledTime).getTime();
	const problem = tickTimeProblem(tickTime);
	if (problem) {
		// Nothing dispatched, nothing recorded: the tick is refused whole.
		logError("tick-refused", problem, { scheduledTime: tickTime });
		return;
	}
	const lanes = runQueues(env).length;
	let handedOver = 0;
	// ≤ 15 sends, ≤ 5 at once (one invocation holds at most 6 connections).
	await forEachLimit(Array.from({ length: lanes - 1 }, (_, i) => i + 1), 5, async (lane) => {
		try {
			await fanoutQueue(env, lane)!.send(laneStart(tickTime, startedAt, lane), { contentType: "json" });
			handedOver++;
		} catch (error) {
			// That lane's pieces stay due for the next tick; the other lanes go ahead regardless.
			logError("fanout-handover-failed", error, { scheduledTime: tickTime, lane });
		}
	});
	const result = await fanOutLane(env, laneStart(tickTime, startedAt, 0), limits);
	handedOver += await handOver(env, result);
	const { next: _, lane: __, ...counts } = result;
	const summary: TickSummary = { ...counts, lanes, handedOver, ms: Date.now() - startedAt };
	logEvent("tick", { ...summary });
	try {
		// The last hour's ticks ride along (one read and one write a minute), for /api/stats.
		const previous = await getLastTick(env);
		const recent = (previous?.recent ?? []).filter(([time]) => time > tickTime - HOUR_MS && time !== tickTime);
		await putLastTick(env, { ...summary, recent: [...recent, [tickTime, summary.dispatched]] });
	} catch (error) {
		// Only the health page's view of the tick is lost; the runs are already queued.
		logError("tick-summary-write-failed", error);
	}
}

/**
 * The fan-out queues' consumer: starts or carries on one lane of a tick per message
 * (max_batch_size 1 in wrangler.toml, so each gets a whole invocation's budget), and hands the
 * rest on again, to the lane's own fan-out queue.
 */
export async function handleFanout(batch: MessageBatch<unknown>, env: Env, limits: FanoutLimits = PLATFORM_LIMITS): Promise<void> {
	for (const message of batch.messages) {
		const parsed = fanoutWorkSchema.safeParse(message.body);
		if (!parsed.success) {
			logError("fanout-malformed", firstIssue(parsed.error, message.body), { body: JSON.stringify(message.body)?.slice(0, 300) });
			message.ack();
			continue;
		}
		try {
			const started = Date.now();
			const result = await fanOutLane(env, parsed.data, limits);
			await handOver(env, result);
			logFanout(result, Date.now() - started, batch.queue);
			message.ack();
		} catch (error) {
			// A KV or queue fault: retried, then the dead-letter queue. Pieces not reached stay
			// due, so the next tick dispatches them; ones already sent are sent again, and the
			// consumer and the runtime drop the duplicates (same runId).
			logError("fanout-crashed", error, { work: parsed.data });
			message.retry({ delaySeconds: 1 });
		}
	}
}

/**
 * Queues the rest of a lane, if any, on the lane's own fan-out queue; answers how many
 * hand-overs it queued. A failed send is logged, not thrown: what was sent stays sent, and the
 * pieces not reached stay due for the next tick.
 */
async function handOver(env: Pick<Env, "FANOUT">, result: FanoutResult): Promise<number> {
	if (!result.next) return 0;
	try {
		await fanoutQueue(env, result.lane)!.send(result.next, { contentType: "json" });
		return 1;
	} catch (error) {
		logError("fanout-handover-failed", error, { work: result.next });
		return 0;
	}
}
