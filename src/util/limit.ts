/**
 * Runs `task` over `items` with at most `limit` running at once, in order of start. A Worker
 * invocation may hold only 6 connections open at once; further ones queue inside the runtime,
 * where a run's timeout would tick while it merely waits, so callers bound concurrency here.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<void>): Promise<void> {
	let next = 0;
	const worker = async () => {
		while (next < items.length) {
			const index = next++;
			await task(items[index] as T, index);
		}
	};
	await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
