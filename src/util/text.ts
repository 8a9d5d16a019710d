const encoder = new TextEncoder();

/** Byte length of a string in UTF-8 (what KV and Queues limits count). */
export function utf8Length(text: string): number {
	return encoder.encode(text).length;
}

/** A setting that lists values separated by commas or whitespace, empty entries dropped. */
export function listSetting(value: string | undefined): string[] {
	return (value ?? "").split(/[\s,]+/).filter(Boolean);
}

/** Text of at most `maxChars` code points: whole if it fits, else cut (never inside a surrogate pair) and ending in `…`. */
export function clipText(text: string, maxChars: number): string {
	if (text.length <= maxChars) return text;
	const points = Array.from(text);
	return points.length <= maxChars ? text : `${points.slice(0, maxChars - 1).join("")}…`;
}
