import type { PieceSummary } from "../registry/entry";

/**
 * A piece's state as the dashboard colours it (the replaced admin's dot): `ok` (green, the last
 * run succeeded), `pending` (amber: new, re-initialising, or the runtime unavailable),
 * `disabled` (grey: by an operator), `failing` (red: failing, or disabled by its failures).
 * public/app.js applies the same rule in the browser.
 */
export type PieceState = "ok" | "pending" | "disabled" | "failing";

/** The state of a listed piece. */
export function pieceState(piece: Pick<PieceSummary, "disabledAt" | "status" | "failures">): PieceState {
	if (piece.disabledAt) return piece.status === "Disabled via UI" ? "disabled" : "failing";
	if (piece.failures > 0) return "failing";
	return piece.status === "Success" ? "ok" : "pending";
}
