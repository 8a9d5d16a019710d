const encoder = new TextEncoder();

/** Byte length of a string in UTF-8 (what KV and Queues limits count). */
export function utf8Length(text: string): number {
	return encoder.encode(text).length;
}

/** Keeps the first `maxChars` code points (never half a surrogate pair) and marks a cut with `…`. */
export function clipText(text: string, maxChars: number): string {
	if (text.length <= maxChars) return text;
	const points = Array.from(text);
	return points.length <= maxChars ? text : `${points.slice(0, maxChars).join("")}…`;
}
