import * as z from "zod/mini";
import type { PieceEntry } from "../registry/entry";
import { integrationSchema, pieceIdSchema, spaceSchema } from "../schema";
import { clipText } from "../util/text";
import { EARLIEST_TICK_MS, MAX_CONSECUTIVE_FAILURES } from "./schedule";
import { disabledBy } from "./state";

/*
 * Importing the replaced service's registry (`POST /api/admin/import`, docs/kv-schema.md
 * "Importing"): what a row must hold, the entry a row makes, and how it merges with an entry
 * the Worker already holds. Pure: src/api/import.ts does the reading and writing.
 */

/**
 * Below this a nonzero time is taken for seconds, not milliseconds: 10^11 ms is March 1973,
 * before any registration, while 10^11 s lies 3,000 years ahead. The same bound as a tick's.
 */
export const SECONDS_THRESHOLD = EARLIEST_TICK_MS;

/** A time more than this far ahead of the Worker's clock is refused as impossible. */
export const MAX_FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;

/**
 * Longest status kept from a row, in characters: a status is display text, so a longer one is
 * clipped (ending in `…`) rather than the row refused. Well above anything this Worker writes
 * (an error is clipped to 1,000 characters), so an export of it re-imports unchanged.
 */
export const MAX_IMPORT_STATUS_LENGTH = 4096;

/**
 * One row of an import, validated: the replaced service's eight fields (`pieceId` normalised,
 * `of:fid1:…` stored as `fid1:…`; `disabledAt` 0 when the row had none), and our export's
 * extras, absent from the replaced service's rows.
 */
export type ImportRow = Pick<PieceEntry, "space" | "pieceId" | "integration" | "createdAt" | "updatedAt" | "disabledAt" | "lastRun" | "status"> &
	Partial<Pick<PieceEntry, "failures" | "nextRunAt" | "lastFailureAt" | "lastSuccessAt">>;

/** A time field: whole, non-negative milliseconds, not seconds, not beyond tomorrow. */
function time(name: string, now: number) {
	return z.number({ error: `${name} must be a number (milliseconds since the epoch)` }).check(
		z.refine((ms: number) => Number.isInteger(ms), `${name} must be a whole number of milliseconds`),
		z.refine((ms: number) => ms >= 0, `${name} must not be negative`),
		z.refine((ms: number) => ms === 0 || ms >= SECONDS_THRESHOLD || !Number.isInteger(ms) || ms < 0, {
			error: (issue) => `${name} looks like seconds, not milliseconds (${String(issue.input)})`,
		}),
		z.refine((ms: number) => ms <= now + MAX_FUTURE_SKEW_MS, {
			error: (issue) => `${name} lies more than a day in the future (${String(issue.input)})`,
		}),
	);
}

/**
 * The schema of one row, checked against the Worker's clock `now`. Unknown fields are ignored
 * (the replaced service's rows carry none today, our export's view-only ones are dropped).
 */
export function importRowSchema(now: number) {
	return z.object(
		{
			space: spaceSchema,
			pieceId: pieceIdSchema,
			integration: integrationSchema,
			createdAt: time("createdAt", now),
			updatedAt: time("updatedAt", now),
			// The replaced service wrote `disabledAt: undefined` for a new piece: absent, null or 0 is enabled.
			disabledAt: z.pipe(
				z.optional(z.nullable(time("disabledAt", now))),
				z.transform((ms: number | null | undefined) => ms ?? 0),
			),
			lastRun: time("lastRun", now),
			status: z.pipe(
				z.string({ error: "status must be a string" }).check(
					// A lone surrogate breaks every strict JSON reader of the entry afterwards.
					z.refine((text: string) => text.isWellFormed(), "status must be valid Unicode text (it has a lone surrogate)"),
				),
				z.transform((text: string) => clipText(text, MAX_IMPORT_STATUS_LENGTH)),
			),
			failures: z.optional(
				z.int({ error: `failures must be a whole number from 0 to ${MAX_CONSECUTIVE_FAILURES}` }).check(
					z.gte(0, `failures must be a whole number from 0 to ${MAX_CONSECUTIVE_FAILURES}`),
					z.lte(MAX_CONSECUTIVE_FAILURES, `failures must be a whole number from 0 to ${MAX_CONSECUTIVE_FAILURES}`),
				),
			),
			nextRunAt: z.optional(time("nextRunAt", now)),
			lastFailureAt: z.optional(time("lastFailureAt", now)),
			lastSuccessAt: z.optional(time("lastSuccessAt", now)),
		},
		{ error: "row must be a JSON object" },
	);
}

/** How recent a record is: its last registration or admin change, or its last run. */
export function recency(entry: Pick<PieceEntry, "updatedAt" | "lastRun">): number {
	return Math.max(entry.updatedAt, entry.lastRun);
}

/** What importing one row does. */
export type ImportDecision =
	| { outcome: "created"; entry: PieceEntry }
	| { outcome: "updated"; entry: PieceEntry }
	| { outcome: "unchanged"; reason?: string };

/**
 * Decides one row against the entry the Worker holds (or null):
 * - none: a new entry from the row: its eight fields as given, `failures` 0 unless given (the
 *   replaced service kept failure counts in memory only), `lastSuccessAt` its `lastRun` when its
 *   status is `Success` unless given, due at the next tick unless `nextRunAt` is given, and
 *   every other field at its "never" value;
 * - one newer than the row (by `recency`): kept, the row changes nothing;
 * - otherwise the row's fields replace the stored ones, `createdAt` is the earlier of the two,
 *   and what only the Worker knows (its run history, last run id, error, duration, outage) is
 *   kept; a result equal to what is stored is `unchanged`, so the caller writes nothing and an
 *   import repeated writes nothing the second time.
 * A tie goes to the row: the replaced service's admin enable and disable change neither time.
 */
export function decideImport(existing: PieceEntry | null, row: ImportRow): ImportDecision {
	if (!existing) return { outcome: "created", entry: fromRow(row, null) };
	if (recency(existing) > recency(row)) return { outcome: "unchanged", reason: "the Worker's entry is newer than the row; kept" };
	const entry = fromRow(row, existing);
	return sameEntry(existing, entry) ? { outcome: "unchanged" } : { outcome: "updated", entry };
}

function fromRow(row: ImportRow, existing: PieceEntry | null): PieceEntry {
	const never = {
		lastRunId: "",
		lastError: "",
		lastDurationMs: 0,
		unavailableSince: 0,
	};
	// Who disabled it is the row's to say (from its disabledAt and status), not the stored entry's.
	const { disabledBy: _, ...kept } = existing ?? ({} as Partial<PieceEntry>);
	const entry: PieceEntry = {
		...never,
		...kept,
		space: row.space,
		pieceId: row.pieceId,
		integration: row.integration,
		createdAt: existing ? earlier(existing.createdAt, row.createdAt) : row.createdAt,
		updatedAt: row.updatedAt,
		disabledAt: row.disabledAt,
		lastRun: row.lastRun,
		status: row.status,
		failures: row.failures ?? 0,
		nextRunAt: row.nextRunAt ?? 0,
		lastSuccessAt: row.lastSuccessAt ?? (row.status === "Success" ? row.lastRun : (existing?.lastSuccessAt ?? 0)),
		lastFailureAt: row.lastFailureAt ?? existing?.lastFailureAt ?? 0,
	};
	const by = disabledBy(entry);
	return by ? { ...entry, disabledBy: by } : entry;
}

/** The earlier of two times, where 0 is "not set". */
function earlier(a: number, b: number): number {
	if (!a) return b;
	if (!b) return a;
	return Math.min(a, b);
}

/** Whether two entries hold the same record (an absent optional time and 0 are the same). */
export function sameEntry(a: PieceEntry, b: PieceEntry): boolean {
	return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(entry: PieceEntry) {
	return {
		space: entry.space,
		pieceId: entry.pieceId,
		integration: entry.integration,
		createdAt: entry.createdAt,
		updatedAt: entry.updatedAt,
		disabledAt: entry.disabledAt,
		lastRun: entry.lastRun,
		status: entry.status,
		failures: entry.failures,
		nextRunAt: entry.nextRunAt,
		lastRunId: entry.lastRunId,
		lastError: entry.lastError,
		lastDurationMs: entry.lastDurationMs,
		unavailableSince: entry.unavailableSince,
		lastFailureAt: entry.lastFailureAt ?? 0,
		lastSuccessAt: entry.lastSuccessAt ?? 0,
		disabledBy: entry.disabledBy ?? null,
		history: entry.history ?? [],
	};
}
