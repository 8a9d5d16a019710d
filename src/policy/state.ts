import type { DisabledBy, HistoryRecord, PieceSummary, RunRecord } from "../registry/entry";
import { NOT_FOUND_STATUS } from "./schedule";

/**
 * A piece's state, one of four that never overlap, so counts and filters agree: `ok` (the
 * last run succeeded), `pending` (new, re-initialising, or the runtime unavailable),
 * `failing` (enabled, with consecutive failures: it will run again) and `disabled` (it will not
 * run until enabled: by an operator, by its third failure in a row, or by the runtime finding no
 * such piece; `disabledBy` says which).
 * public/app.js applies the same rule in the browser, and colours a piece disabled by its
 * failures red, as the replaced admin did.
 */
export type PieceState = "ok" | "pending" | "disabled" | "failing";

/** The state of a listed piece. */
export function pieceState(piece: Pick<PieceSummary, "disabledAt" | "status" | "failures">): PieceState {
	if (piece.disabledAt) return "disabled";
	if (piece.failures > 0) return "failing";
	return piece.status === "Success" ? "ok" : "pending";
}

/**
 * Who disabled a disabled piece: the entry says (`disabledBy`); an entry without it (written
 * before it existed, or imported) is an operator's if its status is `Disabled via UI`, the
 * runtime's not-found if its status says so, else its failures'.
 */
export function disabledBy(piece: Pick<PieceSummary, "disabledAt" | "status" | "disabledBy">): DisabledBy | null {
	if (!piece.disabledAt) return null;
	if (piece.disabledBy) return piece.disabledBy;
	if (piece.status === "Disabled via UI") return "operator";
	return piece.status.startsWith(`Disabled: ${NOT_FOUND_STATUS}`) ? "not-found" : "failures";
}

/** One letter per recorded outcome, for the list metadata's strip of recent runs. */
const OUTCOME_CODES: Record<RunRecord["outcome"], string> = { success: "s", failure: "f", disabled: "d", unavailable: "u", skipped: "k" };

/** How many recorded runs the strip shows. */
export const RECENT_RUNS = 12;

/** The last recorded outcomes, oldest first, as letters (`ssfu…`): 12 bytes of metadata at most. Admin actions are not runs: the strip leaves them out. */
export function recentRuns(history: readonly HistoryRecord[] | undefined): string {
	const runs = (history ?? []).filter((record): record is RunRecord => record.outcome !== "admin");
	return runs.slice(-RECENT_RUNS).map((run) => OUTCOME_CODES[run.outcome]).join("");
}
