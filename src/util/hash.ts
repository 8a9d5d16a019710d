/**
 * FNV-1a, 32-bit, over a string's UTF-16 code units: a fast, stable, well-spread hash for
 * placing things (a piece's phase in the minute, a space's shard). Not for security.
 */
export function fnv1a(text: string): number {
	let hash = 0x811c9dc5;
	for (let i = 0; i < text.length; i++) {
		hash ^= text.charCodeAt(i);
		hash = Math.imul(hash, 0x01000193);
	}
	return hash >>> 0;
}
