import { describe, expect, it } from "vitest";
import { pacer, type Clock } from "../../src/util/pace";

/** A FAKE clock: time moves only when someone sleeps. */
function fakeClock(): Clock & { slept: number[] } {
	let now = 0;
	const slept: number[] = [];
	return {
		slept,
		now: () => now,
		sleep: async (ms) => {
			slept.push(ms);
			now += ms;
		},
	};
}

describe("pacer (queue's 5,000 messages per second)", () => {
	it("lets a burst up to the limit through at once, then waits for the window to slide", async () => {
		const clock = fakeClock();
		const take = pacer(300, clock);
		const times: number[] = [];
		for (let i = 0; i < 9; i++) {
			await take(100);
			times.push(clock.now());
		}
		expect(times).toEqual([0, 0, 0, 1000, 1000, 1000, 2000, 2000, 2000]);
	});

	it("never has more than the limit in any one-second window, even with concurrent senders", async () => {
		const clock = fakeClock();
		const take = pacer(250, clock);
		const log: { at: number; count: number }[] = [];
		await Promise.all(
			Array.from({ length: 20 }, async (_, i) => {
				const count = 40 + (i % 3) * 30;
				await take(count);
				log.push({ at: clock.now(), count });
			}),
		);
		for (const { at } of log) {
			const inWindow = log.filter((entry) => entry.at > at - 1000 && entry.at <= at).reduce((sum, entry) => sum + entry.count, 0);
			expect(inWindow).toBeLessThanOrEqual(250);
		}
		expect(log).toHaveLength(20);
	});

	it("lets a single batch larger than the limit through rather than wait forever", async () => {
		const take = pacer(50, fakeClock());
		await expect(take(100)).resolves.toBeUndefined();
	});
});
