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
	it("spaces sends evenly at the rate, from the first", async () => {
		const clock = fakeClock();
		const take = pacer(400, clock);
		const times: number[] = [];
		for (let i = 0; i < 9; i++) {
			await take(100);
			times.push(clock.now());
		}
		expect(times).toEqual([0, 250, 500, 750, 1000, 1250, 1500, 1750, 2000]);
	});

	it("never has more than the rate plus one batch in any one-second window, with concurrent senders, and keeps the rate on average", async () => {
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
		expect(log).toHaveLength(20);
		for (const { at } of log) {
			const inWindow = log.filter((entry) => entry.at >= at && entry.at < at + 1000).reduce((sum, entry) => sum + entry.count, 0);
			expect(inWindow).toBeLessThanOrEqual(250 + 100);
		}
		// The last send's slot: everything before it at 250 a second.
		const before = log.slice(0, -1).reduce((sum, entry) => sum + entry.count, 0);
		expect(log.at(-1)!.at).toBeCloseTo((before * 1000) / 250, 6);
	});

	it("does not catch up a sender that fell behind with a burst", async () => {
		const clock = fakeClock();
		const take = pacer(100, clock);
		await take(100);
		await clock.sleep(5_000);
		const start = clock.now();
		await take(100);
		await take(100);
		expect(clock.now() - start).toBe(1_000);
	});

	it("lets a single batch larger than the rate through rather than wait forever", async () => {
		const take = pacer(50, fakeClock());
		await expect(take(100)).resolves.toBeUndefined();
	});
});
