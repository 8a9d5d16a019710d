/**
 * Reads at most `maxBytes` of a body and cancels the rest, so an oversized body costs no
 * memory beyond the cap (an isolate has 128 MB). `truncated` says whether anything was left.
 */
export async function readUpTo(body: ReadableStream<Uint8Array> | null, maxBytes: number): Promise<{ bytes: Uint8Array; truncated: boolean }> {
	if (!body) return { bytes: new Uint8Array(), truncated: false };
	const reader = body.getReader();
	const chunks: Uint8Array[] = [];
	let size = 0;
	let truncated = false;
	for (;;) {
		const { done, value } = await reader.read();
		if (done) break;
		const room = maxBytes - size;
		if (value.byteLength > room) {
			chunks.push(value.subarray(0, room));
			size += room;
			truncated = true;
			await reader.cancel();
			break;
		}
		chunks.push(value);
		size += value.byteLength;
	}
	const bytes = new Uint8Array(size);
	let offset = 0;
	for (const chunk of chunks) {
		bytes.set(chunk, offset);
		offset += chunk.byteLength;
	}
	return { bytes, truncated };
}
