import type { PieceEntry } from "../registry/entry";

/** One changed field: its value before and after (null: the piece did not exist, or no longer does). */
export type FieldChange = [before: unknown, after: unknown];

/**
 * The fields an admin action changed, before → after, for its `admin-change` log event. The
 * history is left out (it only grows by the action's own record); a created piece has every
 * field with `null` before, a deleted one every field with `null` after, so the event alone
 * records what was lost.
 */
export function changedFields(before: PieceEntry | null, after: PieceEntry | null): Record<string, FieldChange> {
	const changes: Record<string, FieldChange> = {};
	const fields = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
	fields.delete("history");
	for (const field of fields) {
		const was = before ? (before[field as keyof PieceEntry] ?? null) : null;
		const is = after ? (after[field as keyof PieceEntry] ?? null) : null;
		if (JSON.stringify(was) !== JSON.stringify(is)) changes[field] = [was, is];
	}
	return changes;
}
