import { handleFetch } from "./api";
import { handleQueue } from "./consumer";
import { isFanoutQueue } from "./lanes";
import { handleFanout, handleScheduled } from "./cron";

/**
 * The scheduler Worker. Data flows cron → fan-out → queue → consumer → runtime:
 * - scheduled: the minute's tick lists the registry and queues one message per due piece;
 * - queues `bg-piece-fanout` (and `bg-piece-fanout-<n>`, one per further lane): lane starts
 *   and the rest of a lane's fan-out past one invocation's budget;
 * - queue `bg-piece-runs` (and its lanes): each message asks the piece runtime to run that
 *   piece's bgUpdater;
 * - fetch: registration, admin and health routes, the dashboard (under BASE_PATH, if set).
 */
export default {
	fetch: (request, env, ctx) => handleFetch(request, env, ctx),
	scheduled: (controller, env) => handleScheduled(controller, env),
	queue: (batch, env) => (isFanoutQueue(batch.queue) ? handleFanout(batch, env) : handleQueue(batch, env)),
} satisfies ExportedHandler<Env, unknown>;
