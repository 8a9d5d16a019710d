/**
 * The CLI's export and import loops, over any fetch-like transport: the CLI passes one that
 * calls the Worker over HTTP, the tests one that calls it inside workerd. No Node APIs here.
 */
import { KV_WRITE_INTERVAL_MS } from "../src/registry/keys";
import { pieceIdSchema } from "../src/schema";

/** Sends one request to the Worker, with the admin token: a path (and query) and its init. */
export type Transport = (path: string, init?: RequestInit) => Promise<Response>;

/** The Worker refused a request (4xx/5xx): the CLI prints it and exits 1. */
export class TransferError extends Error {
	constructor(
		readonly status: number,
		message: string,
	) {
		super(`HTTP ${status}: ${message}`);
	}
}

/** The replaced service's fields, in its order: every exported row starts with them. */
export const UPSTREAM_FIELDS = ["space", "pieceId", "integration", "createdAt", "updatedAt", "disabledAt", "lastRun", "status"] as const;
/** This Worker's own fields that an import takes back, after the upstream ones. */
export const EXTRA_FIELDS = ["failures", "nextRunAt", "lastFailureAt", "lastSuccessAt"] as const;

/** One exported row: the replaced service's entry, then our extras. */
export type ExportRow = Record<(typeof UPSTREAM_FIELDS)[number], string | number> & Record<(typeof EXTRA_FIELDS)[number], number>;

/** Rows per import request: the Worker's limit (MAX_IMPORT_ROWS in src/api/import.ts). */
export const IMPORT_CHUNK_ROWS = 100;
/** Bytes per import request, below the Worker's 1 MB (MAX_IMPORT_BODY_BYTES). */
export const IMPORT_CHUNK_BYTES = 900 * 1024;
/** How many times a row KV refused for rate is sent again, a second apart at least. */
export const RETRY_ROUNDS = 5;
/** How many times a request answered 429/503 with Retry-After is sent again. */
export const BUSY_RESENDS = 5;
/** The longest Retry-After honoured, in seconds. */
const MAX_RETRY_AFTER_SECONDS = 60;

type Sleep = (ms: number) => Promise<void>;
const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

interface ListedPiece {
	space: string;
	pieceId: string;
	status: string;
	[field: string]: unknown;
}

/**
 * Every piece of the registry, as rows of the replaced service's array with our extras:
 * follows every page of the admin list (list metadata, 1,000 a page). The list's status is
 * clipped past 300 characters; such a piece's full status is read from its entry, so an export
 * re-imports unchanged. A piece deleted meanwhile is left out.
 */
export async function exportRegistry(transport: Transport, options: { sleep?: Sleep } = {}): Promise<ExportRow[]> {
	const rows: ExportRow[] = [];
	let cursor: string | null = null;
	do {
		const query = new URLSearchParams({ limit: "1000" });
		if (cursor) query.set("cursor", cursor);
		const page = (await request(transport, `/api/integrations/bg?${query}`, {}, options.sleep)) as { pieces: ListedPiece[]; cursor: string | null };
		for (const piece of page.pieces) {
			const full = piece.status.endsWith("…") ? await fullEntry(transport, piece, options.sleep) : piece;
			if (full) rows.push(toRow(full));
		}
		cursor = page.cursor;
	} while (cursor);
	return rows;
}

async function fullEntry(transport: Transport, piece: ListedPiece, sleep?: Sleep): Promise<ListedPiece | null> {
	try {
		return (await request(transport, `/api/integrations/bg/${encodeURIComponent(piece.space)}/${encodeURIComponent(piece.pieceId)}`, {}, sleep)) as ListedPiece;
	} catch (error) {
		if (error instanceof TransferError && error.status === 404) return null;
		throw error;
	}
}

function toRow(piece: ListedPiece): ExportRow {
	const row: Record<string, unknown> = {};
	for (const field of UPSTREAM_FIELDS) row[field] = piece[field];
	for (const field of EXTRA_FIELDS) row[field] = piece[field] ?? 0;
	return row as ExportRow;
}

/** The export as text: one JSON array, a row per line. */
export function formatExport(rows: readonly unknown[]): string {
	return rows.length ? `[\n${rows.map((row) => JSON.stringify(row)).join(",\n")}\n]\n` : "[]\n";
}

/** What became of one row of the file, by its index in the file's array. */
export interface RowOutcome {
	index: number;
	outcome: "created" | "updated" | "unchanged" | "refused" | "retry";
	reason?: string;
}

/** What an import did. */
export interface ImportReport {
	dryRun: boolean;
	counts: { created: number; updated: number; unchanged: number; refused: number; retry: number };
	/** Rows naming a piece another row names too (in either spelling), merged before sending. */
	duplicatesMerged: number;
	/** One per row sent, in the file's order. */
	outcomes: RowOutcome[];
}

/** Options of an import. */
export interface ImportOptions {
	dryRun?: boolean;
	sleep?: Sleep;
	/** Called after each request with how many rows have an outcome. */
	progress?: (done: number, total: number) => void;
}

interface ServerResult {
	index: number;
	outcome: RowOutcome["outcome"];
	reason?: string;
}

/**
 * Imports rows of a registry array: rows naming the same piece (`fid1:…` and `of:fid1:…` are
 * one) are merged first, keeping the most recent (max of updatedAt and lastRun; a tie keeps the
 * later row); the rest go in requests of at most 100 rows, one after another. A row the Worker
 * answers `retry` (KV's one write per key per second) is sent again a second later, a few
 * times; a request answered 429 or 503 with Retry-After is sent again after that wait.
 */
export async function importRegistry(transport: Transport, rows: readonly unknown[], options: ImportOptions = {}): Promise<ImportReport> {
	const dryRun = options.dryRun ?? false;
	const sleep = options.sleep ?? realSleep;
	const { kept, duplicatesMerged } = mergeDuplicates(rows);
	const outcomes = new Map<number, RowOutcome>();
	const sendable: number[] = [];
	for (const index of kept) {
		if (sizeOf(rows[index]) <= IMPORT_CHUNK_BYTES) sendable.push(index);
		else outcomes.set(index, { index, outcome: "refused", reason: `the row is larger than a request may be (${IMPORT_CHUNK_BYTES} bytes)` });
	}
	for (const chunk of chunks(sendable, rows)) {
		let pending = chunk;
		for (let round = 0; pending.length; round++) {
			if (round > 0) await sleep(KV_WRITE_INTERVAL_MS);
			const answer = (await request(transport, "/api/admin/import", { method: "POST", body: JSON.stringify({ rows: pending.map((index) => rows[index]), dryRun }) }, sleep)) as { results: ServerResult[] };
			const again: number[] = [];
			for (const result of answer.results) {
				const index = pending[result.index]!;
				outcomes.set(index, { index, outcome: result.outcome, ...(result.reason ? { reason: result.reason } : {}) });
				if (result.outcome === "retry" && round < RETRY_ROUNDS) again.push(index);
			}
			pending = again;
		}
		options.progress?.(outcomes.size, kept.length);
	}
	const sorted = [...outcomes.values()].sort((a, b) => a.index - b.index);
	const counts = { created: 0, updated: 0, unchanged: 0, refused: 0, retry: 0 };
	for (const { outcome } of sorted) counts[outcome]++;
	return { dryRun, counts, duplicatesMerged, outcomes: sorted };
}

/**
 * The indexes of the rows to send: one per piece, the most recent of each. A row whose ids the
 * Worker will refuse is sent as it is, to be refused with its reason.
 */
export function mergeDuplicates(rows: readonly unknown[]): { kept: number[]; duplicatesMerged: number } {
	const slotOf = new Map<string, number>();
	const kept: number[] = [];
	rows.forEach((row, index) => {
		const key = pieceOf(row);
		const slot = key === null ? undefined : slotOf.get(key);
		if (slot === undefined) {
			if (key !== null) slotOf.set(key, kept.length);
			kept.push(index);
		} else if (recency(row) >= recency(rows[kept[slot]!])) {
			kept[slot] = index;
		}
	});
	return { kept, duplicatesMerged: rows.length - kept.length };
}

/** `space/pieceId` with the id normalised as the Worker does, or null if it would refuse them. */
function pieceOf(row: unknown): string | null {
	if (!row || typeof row !== "object") return null;
	const { space, pieceId } = row as Record<string, unknown>;
	const id = pieceIdSchema.safeParse(pieceId);
	return typeof space === "string" && id.success ? `${space}/${id.data}` : null;
}

function recency(row: unknown): number {
	const { updatedAt, lastRun } = (row ?? {}) as Record<string, unknown>;
	return Math.max(typeof updatedAt === "number" ? updatedAt : 0, typeof lastRun === "number" ? lastRun : 0);
}

/** Groups row indexes into requests of at most 100 rows and IMPORT_CHUNK_BYTES. */
function* chunks(indexes: readonly number[], rows: readonly unknown[]): Generator<number[]> {
	let chunk: number[] = [];
	let bytes = 0;
	for (const index of indexes) {
		const size = sizeOf(rows[index]);
		if (chunk.length && (chunk.length >= IMPORT_CHUNK_ROWS || bytes + size > IMPORT_CHUNK_BYTES)) {
			yield chunk;
			chunk = [];
			bytes = 0;
		}
		chunk.push(index);
		bytes += size;
	}
	if (chunk.length) yield chunk;
}

/** A row's size in a request body: its JSON's UTF-8 bytes and a comma. */
function sizeOf(row: unknown): number {
	return new TextEncoder().encode(JSON.stringify(row) ?? "null").length + 1;
}

/**
 * One request, resent after Retry-After when the Worker (or Cloudflare in front of it) answers
 * 429 or 503 with one; the parsed JSON answer, or a TransferError with the Worker's error.
 */
async function request(transport: Transport, path: string, init: RequestInit, sleep: Sleep = realSleep): Promise<unknown> {
	for (let attempt = 0; ; attempt++) {
		const headers = new Headers(init.headers);
		if (init.body) headers.set("content-type", "application/json");
		const response = await transport(path, { ...init, headers });
		const text = await response.text();
		let body: unknown = text;
		try {
			body = JSON.parse(text);
		} catch {
			// Not JSON: shown as text.
		}
		if (response.ok) return body;
		const wait = retryAfterSeconds(response.headers.get("retry-after"));
		if ((response.status === 429 || response.status === 503) && wait !== null && attempt < BUSY_RESENDS) {
			await sleep(Math.min(wait, MAX_RETRY_AFTER_SECONDS) * 1000);
			continue;
		}
		const error = body && typeof body === "object" && "error" in body ? (body as { error: unknown }).error : text;
		throw new TransferError(response.status, String(error));
	}
}

/** Retry-After in seconds (a number of seconds or an HTTP date), or null if absent or unreadable. */
function retryAfterSeconds(value: string | null): number | null {
	if (value === null || value.trim() === "") return null;
	if (/^\d+$/.test(value.trim())) return Number(value.trim());
	const date = Date.parse(value);
	return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}
