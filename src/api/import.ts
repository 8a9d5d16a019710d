import type { IRequest } from "itty-router";
import * as z from "zod/mini";
import { logEvent } from "../log";
import { changedFields } from "../policy/audit";
import { withAdminAction } from "../policy/history";
import { type ImportRow, decideImport, importRowSchema } from "../policy/import";
import type { PieceEntry } from "../registry/entry";
import { pieceKey } from "../registry/keys";
import { countPieces, getEntry, isWriteRateLimited, putEntry } from "../registry/store";
import { firstIssue } from "../schema";
import { forEachLimit } from "../util/limit";
import { maxPiecesPerSpace } from "./access";
import { logAdminChange } from "./audit";
import { adminLabel, adminOf } from "./auth";
import { parse, readJson } from "./input";

/**
 * Rows per request. Each row costs at most one KV get and one put, so 100 rows stay within
 * 200 of an invocation's 1,000 KV operations, leaving room for the per-space counts (one list
 * per space with a new piece, at most 100).
 */
export const MAX_IMPORT_ROWS = 100;

/** An import's body may be larger than other routes' 64 KB: 100 rows with long statuses. */
export const MAX_IMPORT_BODY_BYTES = 1024 * 1024;

/** KV gets in flight at once: an invocation holds at most 6 connections waiting. */
const READ_CONCURRENCY = 6;

/** What became of one row. */
export type ImportOutcome = "created" | "updated" | "unchanged" | "refused" | "retry";

/** One row's answer; `index` is its place in the request's `rows`. */
export interface ImportResult {
	index: number;
	space?: string;
	pieceId?: string;
	outcome: ImportOutcome;
	reason?: string;
}

/** The answer of `POST /api/admin/import`. */
export interface ImportAnswer {
	success: true;
	dryRun: boolean;
	results: ImportResult[];
	counts: Record<ImportOutcome, number>;
}

const bodySchema = z.object(
	{
		rows: z.array(z.unknown(), { error: "rows must be an array" }).check(z.maxLength(MAX_IMPORT_ROWS, `at most ${MAX_IMPORT_ROWS} rows per request; send the rest in further requests`)),
		dryRun: z.optional(z.boolean({ error: "dryRun must be true or false" })),
	},
	{ error: "body must be a JSON object" },
);

/**
 * `POST /api/admin/import` `{rows, dryRun?}`: upserts entries of the replaced service's registry
 * (and of this Worker's own export), row by row. A row that fails validation is refused with
 * its reason and the others go in; an entry newer than its row is kept; a row that changes
 * nothing writes nothing. A write KV refuses for its one write per key per second answers that
 * row `retry`. `dryRun` writes nothing and answers the same. An imported enabled piece is due
 * at the next tick: no run is queued here. Each row written is an admin change: its audit
 * event, and the import in the piece's history.
 */
export async function importRows(request: IRequest, env: Env): Promise<ImportAnswer> {
	const admin = adminOf(request);
	const by = adminLabel(admin);
	const body = parse(bodySchema, await readJson(request, MAX_IMPORT_BODY_BYTES));
	const dryRun = body.dryRun ?? false;
	const schema = importRowSchema(Date.now());
	const results: ImportResult[] = new Array(body.rows.length);

	// Validate every row, and refuse a second row of the same piece in one request (its write
	// would come within KV's one-write-per-second of the first).
	const valid: { index: number; row: ImportRow }[] = [];
	const firstRowOf = new Map<string, number>();
	body.rows.forEach((input, index) => {
		const parsed = schema.safeParse(input);
		const named = describe(input);
		if (!parsed.success) {
			results[index] = { index, ...named, outcome: "refused", reason: firstIssue(parsed.error, input) };
			return;
		}
		const row = parsed.data;
		const key = pieceKey(row);
		const first = firstRowOf.get(key);
		if (first !== undefined) {
			results[index] = { index, space: row.space, pieceId: row.pieceId, outcome: "refused", reason: `the same piece as row ${first} of this request: send one row per piece` };
			return;
		}
		firstRowOf.set(key, index);
		valid.push({ index, row });
	});

	const stored = new Map<number, PieceEntry | null>();
	await forEachLimit(valid, READ_CONCURRENCY, async ({ index, row }) => {
		stored.set(index, await getEntry(env, row));
	});

	// Rows in order, so the per-space cap counts each space's new pieces as they come: each
	// space is counted in KV at most once per request, then locally.
	const max = maxPiecesPerSpace(env);
	const piecesIn = new Map<string, number>();
	for (const { index, row } of valid) {
		const ref = { space: row.space, pieceId: row.pieceId };
		const decision = decideImport(stored.get(index) ?? null, row);
		if (decision.outcome === "unchanged") {
			results[index] = { index, ...ref, outcome: "unchanged", ...(decision.reason ? { reason: decision.reason } : {}) };
			continue;
		}
		if (decision.outcome === "created") {
			const held = piecesIn.get(row.space) ?? (await countPieces(env, row.space, max));
			if (held >= max) {
				piecesIn.set(row.space, held);
				results[index] = { index, ...ref, outcome: "refused", reason: `space ${row.space} already has ${max} pieces, the most one space may register (MAX_PIECES_PER_SPACE)` };
				continue;
			}
			piecesIn.set(row.space, held + 1);
		}
		if (!dryRun) {
			try {
				await putEntry(env, withAdminAction(decision.entry, "import", by, Date.now()));
			} catch (error) {
				if (!isWriteRateLimited(error)) throw error;
				// Written within the last second (a registration, a run): the caller resends it.
				if (decision.outcome === "created") piecesIn.set(row.space, (piecesIn.get(row.space) ?? 1) - 1);
				results[index] = { index, ...ref, outcome: "retry", reason: "this piece was written a moment ago; send the row again in a second" };
				continue;
			}
			logAdminChange(admin, "import", ref, changedFields(stored.get(index) ?? null, decision.entry), { outcome: decision.outcome });
		}
		results[index] = { index, ...ref, outcome: decision.outcome };
	}

	const counts: Record<ImportOutcome, number> = { created: 0, updated: 0, unchanged: 0, refused: 0, retry: 0 };
	for (const result of results) counts[result.outcome]++;
	logEvent("import", { ...counts, dryRun, by });
	return { success: true, dryRun, results, counts };
}

/** The space and piece id a refused row names, when they are strings of a sensible length. */
function describe(input: unknown): { space?: string; pieceId?: string } {
	if (!input || typeof input !== "object") return {};
	const { space, pieceId } = input as Record<string, unknown>;
	return {
		...(typeof space === "string" && space.length <= 200 && space.isWellFormed() ? { space } : {}),
		...(typeof pieceId === "string" && pieceId.length <= 200 && pieceId.isWellFormed() ? { pieceId } : {}),
	};
}
