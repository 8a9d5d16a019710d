/**
 * BENCHMARK HARNESS ONLY: which invocation a console call belongs to. Workers Logs bills
 * every console.log/console.error call as one event (and one more per invocation), and the
 * bench Worker's invocations interleave in one isolate, so a global "current kind" would
 * misattribute them: an AsyncLocalStorage (workerd's `nodejs_als` flag) carries each
 * invocation's counts through its awaits instead.
 */
import { AsyncLocalStorage } from "node:async_hooks";

const current = new AsyncLocalStorage<{ consoleCalls: number }>();

/** Runs `body` with its console calls counted into `counts`. */
export function countingConsole<T>(counts: { consoleCalls: number }, body: () => Promise<T>): Promise<T> {
	return current.run(counts, body);
}

/** Counts one console call against the invocation it happens in; false outside any. */
export function countConsoleCall(): boolean {
	const counts = current.getStore();
	if (counts) counts.consoleCalls++;
	return counts !== undefined;
}
