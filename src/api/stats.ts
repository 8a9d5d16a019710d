import { HOUR_MS } from "../policy/schedule";
import { pieceState, type PieceState } from "../policy/state";
import { KV_LIST_LIMIT, getLastTick, listPieces } from "../registry/store";

/**
 * Most list calls one stats request makes (900,000 pieces): well inside an invocation's 1,000
 * KV operations with the last-tick read. Past it the counts say `complete: false`.
 */
export const STATS_MAX_LIST_CALLS = 900;

/**
 * `GET /api/stats` (admin): the registry counted by state from list metadata (one list call
 * per 1,000 pieces: $0.0005 a request at 100,000 pieces), the last tick's summary, and the last
 * hour: runs the ticks dispatched, and pieces that failed at least once.
 */
export async function stats(_request: Request, env: Env) {
	const now = Date.now();
	const byState: Record<PieceState, number> = { ok: 0, pending: 0, failing: 0, disabled: 0 };
	let total = 0;
	let enabled = 0;
	let failedLastHour = 0;
	let cursor: string | undefined;
	let listCalls = 0;
	do {
		const page = await listPieces(env, { cursor, limit: KV_LIST_LIMIT });
		listCalls++;
		for (const piece of page.pieces) {
			total++;
			if (piece.disabledAt === 0) enabled++;
			byState[pieceState(piece)]++;
			if ((piece.lastFailureAt ?? 0) >= now - HOUR_MS) failedLastHour++;
		}
		cursor = page.cursor;
	} while (cursor && listCalls < STATS_MAX_LIST_CALLS);

	const tick = await getLastTick(env);
	const recent = (tick?.recent ?? []).filter(([time]) => time > now - HOUR_MS);
	const { recent: _, ...lastTick } = tick ?? { recent: [] };
	return {
		success: true,
		time: now,
		counts: { total, enabled, disabled: total - enabled, failing: byState.failing, byState },
		complete: !cursor,
		lastTick: tick ? lastTick : null,
		lastHour: {
			ticks: recent.length,
			dispatched: recent.reduce((sum, [, dispatched]) => sum + dispatched, 0),
			failedPieces: failedLastHour,
		},
	};
}
