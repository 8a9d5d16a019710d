import type { PieceRef } from "./entry";

/**
 * KV key schema (docs/kv-schema.md). `/` never occurs in a did:key (base58) nor in a piece id
 * (base64url or base32), so it separates the parts unambiguously, and `piece/<space>/` lists
 * one space. Keys stay far below KV's 512-byte limit: ids are length-checked at validation.
 */
export const PIECE_PREFIX = "piece/";

/** Where the last tick's summary is kept, for health and stats. */
export const LAST_TICK_KEY = "meta/last-tick";

/** The registry key of one piece. */
export function pieceKey({ space, pieceId }: PieceRef): string {
	return `${PIECE_PREFIX}${space}/${pieceId}`;
}

/** The list prefix of every piece, or of one space's pieces. */
export function piecePrefix(space?: string): string {
	return space ? `${PIECE_PREFIX}${space}/` : PIECE_PREFIX;
}

/** The piece a registry key names, or null for any other key. */
export function parsePieceKey(key: string): PieceRef | null {
	if (!key.startsWith(PIECE_PREFIX)) return null;
	const rest = key.slice(PIECE_PREFIX.length);
	const slash = rest.indexOf("/");
	if (slash <= 0 || slash === rest.length - 1) return null;
	return { space: rest.slice(0, slash), pieceId: rest.slice(slash + 1) };
}
