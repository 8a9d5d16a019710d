import type { AdminAction, AdminRecord, PieceEntry, RunRecord } from "../registry/entry";
import { clipText } from "../util/text";
import type { RunEvent } from "./schedule";

/** How many records (runs and admin actions) an entry keeps (a few KB at most; KV values may be 25 MB). */
export const RUN_HISTORY_LENGTH = 20;

/** Longest error text kept in a run record. */
const RECORD_ERROR_LENGTH = 200;

/**
 * The entry with one more recorded run, dropping the oldest past RUN_HISTORY_LENGTH. Called
 * only for entries about to be written anyway, so history rides on writes that happen
 * regardless: an outcome that changed something, or a lastRun heartbeat.
 */
export function withRun(entry: PieceEntry, event: RunEvent, at: number, durationMs: number, error: string, skippedFor?: string): PieceEntry {
	const record: RunRecord = { at, outcome: event, durationMs };
	if (event !== "success" && error) record.error = clipText(error, RECORD_ERROR_LENGTH);
	if (skippedFor) record.skippedFor = clipText(skippedFor, RECORD_ERROR_LENGTH);
	return appended(entry, record);
}

/**
 * The entry with an admin action recorded in its history, beside the runs, so the piece's own
 * page says who last disabled, enabled, ran or imported it. Called for entries about to be
 * written anyway (enable, disable, import), and by run-now, whose one write it is.
 */
export function withAdminAction(entry: PieceEntry, action: AdminAction, by: string, at: number): PieceEntry {
	return appended(entry, { at, outcome: "admin", action, by } satisfies AdminRecord);
}

/** The entry with one more history record, dropping the oldest past RUN_HISTORY_LENGTH. */
function appended(entry: PieceEntry, record: RunRecord | AdminRecord): PieceEntry {
	return { ...entry, history: [...(entry.history ?? []), record].slice(-RUN_HISTORY_LENGTH) };
}
