/** A clock the pacer can be tested with. */
export interface Clock {
	now(): number;
	sleep(ms: number): Promise<void>;
}

/** Wall-clock time; sleeping costs no CPU time. */
export const realClock: Clock = {
	now: () => Date.now(),
	sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/**
 * A sliding-window rate limiter: `take(n)` resolves once sending n more items keeps the count
 * over any one second at or below `perSecond`. Callers are served one after another, so
 * concurrent senders share the budget.
 */
export function pacer(perSecond: number, clock: Clock = realClock): (count: number) => Promise<void> {
	const sent: { at: number; count: number }[] = [];
	let inWindow = 0;
	let gate = Promise.resolve();
	const take = async (count: number) => {
		for (;;) {
			const now = clock.now();
			while (sent.length && sent[0]!.at <= now - 1000) inWindow -= sent.shift()!.count;
			if (inWindow + count <= perSecond || !sent.length) {
				sent.push({ at: now, count });
				inWindow += count;
				return;
			}
			await clock.sleep(sent[0]!.at + 1000 - now);
		}
	};
	return (count) => {
		const turn = gate.then(() => take(count));
		gate = turn;
		return turn;
	};
}
