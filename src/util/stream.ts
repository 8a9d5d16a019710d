/**
 * Reads at most `maxBytes` of a body and cancels the rest, so an oversized body costs no
 * memory beyond the cap (an isolate has 128 MB). `truncated` says whether anything was left.
 * An aborted `signal` cancels the body and throws: a body that stalls or drips bytes cannot
 * hold the reader past its deadline (not every body is tied to the fetch's own signal).
 */
export async function readUpTo(body: ReadableStream<Uint8Array> | null, maxBytes: number, signal?: AbortSignal): Promise<{ bytes: Uint8Array; truncated: boolean }> {
	if (!body) return { bytes: new Uint8Array(), truncated: false };
	const reader = body.getReader();
	const aborted = signal && abortion(signal, reader);
	// Handled here, so an abort after the body was read is no unhandled rejection.
	aborted?.catch(() => {});
	const chunks: Uint8Array[] = [];
	let size = 0;
	let truncated = false;
	for (;;) {
		const { done, value } = await (aborted ? Promise.race([reader.read(), aborted]) : reader.read());
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

/** A promise that rejects (after cancelling the reader) once `signal` aborts. */
function abortion(signal: AbortSignal, reader: ReadableStreamDefaultReader<Uint8Array>): Promise<never> {
	return new Promise<never>((_, reject) => {
		const stop = () => {
			reader.cancel().catch(() => {});
			reject(signal.reason ?? new Error("aborted"));
		};
		if (signal.aborted) stop();
		else signal.addEventListener("abort", stop, { once: true });
	});
}
