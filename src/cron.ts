import { fanOut } from "./fanout";
import { logError, logEvent } from "./log";
import { putLastTick } from "./registry/store";

/**
 * The Cron Trigger (`* * * * *`): one fan-out per tick. The tick's scheduledTime is the
 * scheduler's clock: due times are compared against it, so a tick fired by hand with `time=`
 * moves time for everything it dispatches.
 */
export async function handleScheduled(controller: ScheduledController, env: Env): Promise<void> {
	const started = Date.now();
	// Normalised to ms: some callers (service-binding `scheduled()`) hand over a Date.
	const tickTime = new Date(controller.scheduledTime).getTime();
	const summary = { ...(await fanOut(env, tickTime)), ms: 0 };
	summary.ms = Date.now() - started;
	logEvent("tick", summary);
	try {
		await putLastTick(env, summary);
	} catch (error) {
		// Only the health page's view of the tick is lost; the runs are already queued.
		logError("tick-summary-write-failed", error);
	}
}
