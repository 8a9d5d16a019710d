import { handleFetch } from "./api";
import { handleQueue } from "./consumer";
import { FANOUT_QUEUE } from "./lanes";
import { handleFanout, handleScheduled } from "./cron";

/**
 * The scheduler Worker. Data flows cron → fan-out → queue → consumer → runtime:
 * - scheduled: the minute's tick lists the registry and queues one message per due piece;
 * - queue `bg-piece-fanout`: the rest of a tick's fan-out (other lanes, beyond one budget);
 * - queue `bg-piece-runs` (and its lanes): each message asks the piece runtime to run that
 *   piece's bgUpdater;
 * - fetch: registration, admin and health routes, the dashboard (under BASE_PATH, if set).
 */
export default {
	fetch: (request, env, ctx) => handleFetch(request, env, ctx),
	scheduled: (controller, env) => handleScheduled(controller, env),
	queue: (batch, env) => (batch.queue === FANOUT_QUEUE ? handleFanout(batch, env) : handleQueue(batch, env)),
} satisfies ExportedHandler<Env, unknown>;
