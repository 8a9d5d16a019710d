import { logEvent } from "../log";
import type { FieldChange } from "../policy/audit";
import type { AdminAction, PieceRef } from "../registry/entry";
import { type Admin, adminLabel } from "./auth";

/**
 * The audit trail: one `admin-change` event per admin change of a piece (docs/observability.md),
 * saying who (`by`: an Access identity or a token's fingerprint, never a token), what (`action`,
 * `piece`) and the fields before → after (`changes`, src/policy/audit.ts). The piece's history
 * records the action too, except a delete's, whose history goes with the piece: this event is
 * then its only record.
 */
export function logAdminChange(admin: Admin, action: AdminAction | "delete", piece: PieceRef, changes: Record<string, FieldChange>, fields: Record<string, unknown> = {}): void {
	logEvent("admin-change", { action, by: adminLabel(admin), piece: `${piece.space}/${piece.pieceId}`, changes, ...fields });
}
