// BENCHMARK HARNESS ONLY: the throughput model of `npm run bench` (docs/performance.md, "How
// many pieces a minute"). It scales the measured per-invocation figures of one design by the
// platform's limits; every number it returns is modelled, not measured.

/**
 * Cloudflare's published limits (December 2026) the model applies: 250 concurrent consumer
 * invocations and 5,000 messages a second per queue; per invocation 1,000 KV operations,
 * 10,000 subrequests and 6 simultaneous connections.
 */
export const PLATFORM = {
	consumersPerQueue: 250,
	queueMessagesPerSecond: 5_000,
	lanesMax: 16,
	kvOpsPerInvocation: 1_000,
	subrequestsPerInvocation: 10_000,
	connectionsPerInvocation: 6,
	// src/fanout.ts PLATFORM_LIMITS.maxMessagesPerSecond: one lane's paced sends…
	fanoutMessagesPerSecond: 4_500,
	// …planned to end 50 s into the minute (docs/performance.md), so that a lane never overruns it.
	fanoutSecondsPerPeriod: 50,
};

const GOAL_PER_MINUTE = 1_000_000;

/**
 * The model for one design, from measured figures:
 * - runsPerInvocation: messages delivered ÷ consumer invocations
 * - invocationWallMs: mean wall time of a consumer invocation
 * - perInvocationMax: the largest KV ops, subrequests and open subrequests of any invocation
 * - meanRunMs: the mean run duration at the runtime (for the runs in flight it implies)
 * - reportsPerRequest: protocol 2 reports per report request (null for protocol 1)
 * - holdsRuns: whether a consumer invocation lasts as long as its runs (protocol 1)
 */
export function throughputModel({ runsPerInvocation, invocationWallMs, perInvocationMax, meanRunMs, reportsPerRequest, holdsRuns }) {
	const queuePerMinute = PLATFORM.queueMessagesPerSecond * 60;
	const fanoutPerMinute = PLATFORM.fanoutMessagesPerSecond * PLATFORM.fanoutSecondsPerPeriod;
	// Consumers: 250 invocations at once, each taking runsPerInvocation runs per invocationWallMs.
	const consumersPerMinute = invocationWallMs > 0 ? (runsPerInvocation / (invocationWallMs / 1000)) * PLATFORM.consumersPerQueue * 60 : Infinity;
	const perQueue = Math.min(consumersPerMinute, queuePerMinute);
	const perQueueBinds = consumersPerMinute < queuePerMinute ? "consumers" : "queue";
	const perLane = Math.min(perQueue, fanoutPerMinute);
	const perLaneBinds = fanoutPerMinute < perQueue ? "fanout" : perQueueBinds;
	const max = perLane * PLATFORM.lanesMax;
	const limits = {
		kvOpsPerInvocation: { measured: perInvocationMax.kvOps, limit: PLATFORM.kvOpsPerInvocation },
		subrequestsPerInvocation: { measured: perInvocationMax.subrequests, limit: PLATFORM.subrequestsPerInvocation },
		connectionsPerInvocation: { measured: perInvocationMax.open, limit: PLATFORM.connectionsPerInvocation },
	};
	for (const l of Object.values(limits)) l.ok = l.measured <= l.limit;
	// At 1,000,000 pieces a minute over the lanes it takes: what each queue must carry.
	const lanes = Math.min(PLATFORM.lanesMax, Math.max(1, 2 ** Math.ceil(Math.log2(GOAL_PER_MINUTE / perLane))));
	const perQueueAtGoal = GOAL_PER_MINUTE / lanes / 60;
	const consumersAtGoal = invocationWallMs > 0 ? (perQueueAtGoal / runsPerInvocation) * (invocationWallMs / 1000) : 0;
	const runsPerSecondAtGoal = GOAL_PER_MINUTE / 60;
	const r = (x) => (Number.isFinite(x) ? Math.round(x) : null);
	return {
		piecesPerMinutePerQueue: r(perQueue),
		piecesPerMinuteMax: r(max),
		model: {
			runsPerInvocation: Number(runsPerInvocation.toFixed(2)),
			invocationWallMs: Number(invocationWallMs.toFixed(1)),
			consumersPerMinutePerQueue: r(consumersPerMinute),
			queuePerMinute,
			perQueueBinds,
			fanoutPerMinutePerLane: fanoutPerMinute,
			perLane: r(perLane),
			perLaneBinds,
			lanesMax: PLATFORM.lanesMax,
			limits,
			goal: {
				piecesPerMinute: GOAL_PER_MINUTE,
				lanes,
				// Concurrent consumer invocations one queue needs (limit 250).
				consumersPerQueue: Number(consumersAtGoal.toFixed(1)),
				consumersOk: consumersAtGoal <= PLATFORM.consumersPerQueue,
				// Little's law: runs the runtime holds at once at this rate.
				runtimeRunsInFlight: meanRunMs === null ? null : r(runsPerSecondAtGoal * (meanRunMs / 1000)),
				reportRequestsPerSecond: reportsPerRequest ? r(runsPerSecondAtGoal / reportsPerRequest) : null,
				met: max >= GOAL_PER_MINUTE && consumersAtGoal <= PLATFORM.consumersPerQueue && Object.values(limits).every((l) => l.ok),
			},
			holdsRuns,
		},
	};
}
