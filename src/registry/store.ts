import type { PieceEntry, PieceRef, PieceSummary } from "./entry";
import { clipText, utf8Length } from "../util/text";
import { recentRuns } from "../policy/state";
import { RUNTIME_HEALTH_TTL_SECONDS, type RuntimeHealth } from "../policy/runtime-health";
import { KV_WRITE_INTERVAL_MS, LAST_TICK_KEY, RUNTIME_HEALTH_KEY, parsePieceKey, pieceKey, piecePrefix } from "./keys";

/** The bindings the registry needs. */
export type RegistryEnv = Pick<Env, "REGISTRY">;

/** KV lists at most 1,000 keys a call. */
export const KV_LIST_LIMIT = 1000;

/** KV list metadata must serialise to at most 1,024 bytes a key. */
export const KV_METADATA_LIMIT = 1024;

/** Longest status kept in list metadata; the full text stays in the value. */
const SUMMARY_STATUS_LENGTH = 300; // including the ellipsis of a cut

/** A listed piece: its reference and its summary, read from list metadata alone. */
export type ListedPiece = PieceRef & PieceSummary;

/** One page of a registry listing. */
export interface RegistryPage {
	pieces: ListedPiece[];
	/** Pass back to get the next page; absent on the last one. */
	cursor?: string;
}

/** Reads one piece's full entry, or null when it is not registered. */
export async function getEntry(env: RegistryEnv, ref: PieceRef): Promise<PieceEntry | null> {
	return env.REGISTRY.get<PieceEntry>(pieceKey(ref), "json");
}

export { KV_WRITE_INTERVAL_MS };

/**
 * Writes a piece's entry with its summary as metadata, in one put so the two never disagree.
 * KV takes at most one write per second per key: callers space their writes of one piece.
 */
export async function putEntry(env: RegistryEnv, entry: PieceEntry): Promise<void> {
	await env.REGISTRY.put(pieceKey(entry), JSON.stringify(entry), { metadata: summarise(entry) });
}

/** Whether a KV write failed because the key was written too often (HTTP 429 from KV). */
export function isWriteRateLimited(error: unknown): boolean {
	return /\b429\b|too many requests/i.test(String(error));
}

/** Removes a piece from the registry. */
export async function deleteEntry(env: RegistryEnv, ref: PieceRef): Promise<void> {
	await env.REGISTRY.delete(pieceKey(ref));
}

/**
 * The list-metadata summary of an entry, within KV's 1,024-byte metadata limit: the status is
 * clipped to 300 characters, and further if its UTF-8 (or JSON escapes) would still overflow.
 */
export function summarise(entry: PieceEntry): PieceSummary {
	const summary: PieceSummary = {
		integration: entry.integration,
		createdAt: entry.createdAt,
		updatedAt: entry.updatedAt,
		disabledAt: entry.disabledAt,
		...(entry.disabledBy && entry.disabledAt ? { disabledBy: entry.disabledBy } : {}),
		lastRun: entry.lastRun,
		status: clipText(entry.status, SUMMARY_STATUS_LENGTH),
		failures: entry.failures,
		nextRunAt: entry.nextRunAt,
		lastFailureAt: entry.lastFailureAt ?? 0,
		lastSuccessAt: entry.lastSuccessAt ?? 0,
		// Rides on writes that happen anyway, so the dashboard's strips cost no read per piece.
		recent: recentRuns(entry.history),
	};
	while (utf8Length(JSON.stringify(summary)) > KV_METADATA_LIMIT) {
		summary.status = clipText(summary.status, Math.floor(Array.from(summary.status).length / 2));
	}
	return summary;
}

/**
 * One page of the registry (or of one space, or of one shard's `prefix`), from list metadata
 * only: no read per piece. `limit` is capped at KV's 1,000 keys per list call.
 */
export async function listPieces(env: RegistryEnv, options: { space?: string; prefix?: string; cursor?: string; limit?: number } = {}): Promise<RegistryPage> {
	const result = await env.REGISTRY.list<PieceSummary>({
		prefix: options.prefix ?? piecePrefix(options.space),
		cursor: options.cursor || undefined,
		limit: Math.min(options.limit ?? KV_LIST_LIMIT, KV_LIST_LIMIT),
	});
	const pieces: ListedPiece[] = [];
	for (const key of result.keys) {
		const ref = parsePieceKey(key.name);
		// A key without our metadata was not written by this service: leave it alone.
		if (ref && key.metadata) pieces.push({ ...ref, ...key.metadata });
	}
	return result.list_complete ? { pieces } : { pieces, cursor: result.cursor };
}

/** How many pieces a space holds, counting no further than `atMost` (list metadata only). */
export async function countPieces(env: RegistryEnv, space: string, atMost: number): Promise<number> {
	let count = 0;
	let cursor: string | undefined;
	do {
		const page = await listPieces(env, { space, cursor, limit: Math.min(KV_LIST_LIMIT, atMost - count) });
		count += page.pieces.length;
		cursor = page.cursor;
	} while (cursor && count < atMost);
	return count;
}

/** What one fan-out invocation counted: pieces listed, due, sent, and its KV and queue calls. */
export interface FanoutCounts {
	scheduledTime: number;
	listed: number;
	due: number;
	dispatched: number;
	skipped: number;
	failed: number;
	listCalls: number;
	sendCalls: number;
}

/**
 * The summary a tick leaves behind, for health and stats: what the tick's own invocation
 * fanned out (lane 0, as far as its budget went), how long it took, and how many fan-out
 * hand-overs it queued (other lanes, and the rest of lane 0 past its budget).
 */
export interface TickSummary extends FanoutCounts {
	lanes: number;
	handedOver: number;
	ms: number;
	/** `[scheduledTime, dispatched]` of the ticks of the last hour, this one included. */
	recent?: [number, number][];
}

/** Records the last tick's summary (one KV write per tick). */
export async function putLastTick(env: RegistryEnv, summary: TickSummary): Promise<void> {
	await env.REGISTRY.put(LAST_TICK_KEY, JSON.stringify(summary));
}

/** The last tick's summary, or null before the first tick. */
export async function getLastTick(env: RegistryEnv): Promise<TickSummary | null> {
	return env.REGISTRY.get<TickSummary>(LAST_TICK_KEY, "json");
}

/** The runtime's last seen health, or null if no outage was ever seen (or it expired). */
export async function getRuntimeHealth(env: RegistryEnv): Promise<RuntimeHealth | null> {
	return env.REGISTRY.get<RuntimeHealth>(RUNTIME_HEALTH_KEY, "json");
}

/** Records the runtime's health; an outage's record expires an hour after its last write. */
export async function putRuntimeHealth(env: RegistryEnv, health: RuntimeHealth): Promise<void> {
	const expiry = health.state === "unavailable" ? { expirationTtl: RUNTIME_HEALTH_TTL_SECONDS } : {};
	await env.REGISTRY.put(RUNTIME_HEALTH_KEY, JSON.stringify(health), expiry);
}
