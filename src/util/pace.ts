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
 * A rate limiter on a schedule: `take(n)` resolves at its slot, each slot `n ÷ perSecond`
 * seconds after the one before (or now, if the sender fell behind), so sends go at an even
 * `perSecond` rather than in a burst at the start of each second, and a lane's progress is
 * the plan its runs are aimed by (src/fanout.ts, aimedAt). Any one second holds at most
 * `perSecond` plus one batch (≤ 100): 4,600 at the fan-out's 4,500, under the queue's 5,000.
 * Callers are served one after another, so concurrent senders share the schedule.
 */
export function pacer(perSecond: number, clock: Clock = realClock): (count: number) => Promise<void> {
	let nextAt = Number.NEGATIVE_INFINITY;
	let gate = Promise.resolve();
	const take = async (count: number) => {
		const now = clock.now();
		const at = Math.max(now, nextAt);
		nextAt = at + (count * 1000) / perSecond;
		if (at > now) await clock.sleep(at - now);
	};
	return (count) => {
		const turn = gate.then(() => take(count));
		gate = turn;
		return turn;
	};
}
