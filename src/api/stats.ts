import { HOUR_MS, PERIOD_MS, slotOf } from "../policy/schedule";
import { disabledBy, pieceState, type PieceState } from "../policy/state";
import { KV_LIST_LIMIT, getLastTick, listPieces } from "../registry/store";

/**
 * Most list calls one stats request makes (900,000 pieces): well inside an invocation's 1,000
 * KV operations with the last-tick read. Past it the counts say `complete: false`.
 */
export const STATS_MAX_LIST_CALLS = 900;

/**
 * `GET /api/stats` (admin): the registry counted by state from list metadata (one list call
 * per 1,000 pieces: $0.0005 a request at 100,000 pieces), the last tick's summary, and the last
 * hour: runs the ticks dispatched, and pieces that failed at least once, in all and minute by
 * minute (the dashboard's chart). Every figure comes from what the registry keeps anyway: the
 * tick record's last hour, and each piece's last failure in its list metadata (so a piece that
 * failed twice in the hour counts in its later minute only).
 */
export async function stats(_request: Request, env: Env) {
	const now = Date.now();
	const byState: Record<PieceState, number> = { ok: 0, pending: 0, failing: 0, disabled: 0 };
	let total = 0;
	let enabled = 0;
	let disabledByFailures = 0;
	let failedLastHour = 0;
	// The last 60 whole minutes, the current one last.
	const firstMinute = slotOf(now) - HOUR_MS + PERIOD_MS;
	const perMinute = Array.from({ length: HOUR_MS / PERIOD_MS }, (_, i) => ({ at: firstMinute + i * PERIOD_MS, dispatched: 0, failed: 0 }));
	const minuteOf = (time: number) => perMinute[Math.floor((time - firstMinute) / PERIOD_MS)];
	let cursor: string | undefined;
	let listCalls = 0;
	do {
		const page = await listPieces(env, { cursor, limit: KV_LIST_LIMIT });
		listCalls++;
		for (const piece of page.pieces) {
			total++;
			if (piece.disabledAt === 0) enabled++;
			byState[pieceState(piece)]++;
			// A not-found run is the piece's failure too (the dashboard's red dot counts it so).
			const by = disabledBy(piece);
			if (by === "failures" || by === "not-found") disabledByFailures++;
			if ((piece.lastFailureAt ?? 0) >= now - HOUR_MS) failedLastHour++;
			const failedIn = piece.lastFailureAt ? minuteOf(piece.lastFailureAt) : undefined;
			if (failedIn) failedIn.failed++;
		}
		cursor = page.cursor;
	} while (cursor && listCalls < STATS_MAX_LIST_CALLS);

	const tick = await getLastTick(env);
	const recent = (tick?.recent ?? []).filter(([time]) => time > now - HOUR_MS);
	for (const [time, dispatched] of recent) {
		const minute = minuteOf(time);
		if (minute) minute.dispatched += dispatched;
	}
	const { recent: _, ...lastTick } = tick ?? { recent: [] };
	return {
		success: true,
		time: now,
		counts: { total, enabled, disabled: total - enabled, disabledByFailures, failing: byState.failing, byState },
		complete: !cursor,
		lastTick: tick ? lastTick : null,
		lastHour: {
			ticks: recent.length,
			dispatched: recent.reduce((sum, [, dispatched]) => sum + dispatched, 0),
			failedPieces: failedLastHour,
			perMinute,
		},
	};
}
