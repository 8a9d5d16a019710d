import { fnv1a } from "../util/hash";
import type { PieceRef } from "./entry";

/**
 * KV key schema (docs/kv-schema.md): `piece/<shard>/<space>/<pieceId>`. `/` never occurs in a
 * did:key (base58) nor in a piece id (base64url), so it separates the parts
 * unambiguously. The shard (two hex digits) is a hash of the space, so one space's pieces
 * share one prefix (`piece/<shard>/<space>/` lists a space) and the registry splits into
 * SHARD_COUNT prefixes a fan-out can list independently. Keys stay far below KV's 512-byte
 * limit: ids are length-checked at validation (longest key 187 bytes).
 */
export const PIECE_PREFIX = "piece/";

/**
 * How many shards the registry is split into. Fixed: changing it moves every key. 16 keeps a
 * shard of a 1,000,000-piece registry at ≈ 62,500 pieces (63 list calls), and divides evenly
 * into 1, 2, 4, 8 or 16 fan-out lanes.
 */
export const SHARD_COUNT = 16;

/** KV takes at most one write per second per key: writers of one key keep this far apart. */
export const KV_WRITE_INTERVAL_MS = 1000;

/** Where the last tick's summary is kept, for health and stats. */
export const LAST_TICK_KEY = "meta/last-tick";

/** Where the runtime's last seen health is kept, for health (src/policy/runtime-health.ts). */
export const RUNTIME_HEALTH_KEY = "meta/runtime";

/** The shard a space's pieces live in: 0 to SHARD_COUNT − 1. */
export function shardOf(space: string): number {
	return fnv1a(space) % SHARD_COUNT;
}

/** The list prefix of one shard. */
export function shardPrefix(shard: number): string {
	return `${PIECE_PREFIX}${shard.toString(16).padStart(2, "0")}/`;
}

/** The registry key of one piece. */
export function pieceKey({ space, pieceId }: PieceRef): string {
	return `${shardPrefix(shardOf(space))}${space}/${pieceId}`;
}

/** The list prefix of every piece, or of one space's pieces. */
export function piecePrefix(space?: string): string {
	return space ? `${shardPrefix(shardOf(space))}${space}/` : PIECE_PREFIX;
}

/** The piece a registry key names, or null for any other key (or one in the wrong shard). */
export function parsePieceKey(key: string): PieceRef | null {
	const match = /^piece\/([0-9a-f]{2})\/([^/]+)\/([^/]+)$/.exec(key);
	if (!match) return null;
	const [, shard, space, pieceId] = match as unknown as [string, string, string, string];
	return parseInt(shard, 16) === shardOf(space) ? { space, pieceId } : null;
}
