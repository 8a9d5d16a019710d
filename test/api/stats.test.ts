import { reset } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { PERIOD_MS } from "../../src/policy/schedule";
import { admin, call, fireTick, seedPiece } from "../helpers";

beforeEach(() => reset());

interface Stats {
	counts: { total: number; enabled: number; disabled: number; failing: number; byState: Record<string, number> };
	complete: boolean;
	lastTick: { scheduledTime: number; dispatched: number; recent?: unknown } | null;
	lastHour: { ticks: number; dispatched: number; failedPieces: number; perMinute: { at: number; dispatched: number; failed: number }[] };
}

async function stats(): Promise<Stats> {
	const response = await admin("/api/stats");
	expect(response.status).toBe(200);
	return response.json<Stats>();
}

describe("GET /api/stats", () => {
	it("needs the admin token", async () => {
		expect((await call("/api/stats")).status).toBe(401);
		expect((await call("/api/stats", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
	});

	it("is empty before anything is registered or ticked", async () => {
		expect(await stats()).toMatchObject({
			counts: { total: 0, enabled: 0, disabled: 0, failing: 0 },
			complete: true,
			lastTick: null,
			lastHour: { ticks: 0, dispatched: 0, failedPieces: 0 },
		});
	});

	it("counts pieces by state, and the pieces that failed in the last hour", async () => {
		const now = Date.now();
		await Promise.all([
			seedPiece({ status: "Success" }),
			seedPiece({ status: "Success" }),
			seedPiece({ status: "Initializing" }),
			seedPiece({ status: "boom", failures: 1, lastFailureAt: now - 60_000 }),
			seedPiece({ status: "Disabled: boom", failures: 3, disabledAt: now, lastFailureAt: now - 2 * 60 * 60_000 }),
			seedPiece({ status: "Disabled via UI", disabledAt: now }),
		]);
		expect(await stats()).toMatchObject({
			// Four states that never overlap: the piece its failures disabled is disabled, not failing.
			counts: { total: 6, enabled: 4, disabled: 2, disabledByFailures: 1, failing: 1, byState: { ok: 2, pending: 1, failing: 1, disabled: 2 } },
			lastHour: { failedPieces: 1 },
		});
		const { counts } = await stats();
		expect(Object.values(counts.byState).reduce((a, b) => a + b, 0)).toBe(counts.total);
	});

	it("sums the last hour's ticks; the last tick is shown without its history", async () => {
		await Promise.all([seedPiece({ integration: "counter" }), seedPiece({ integration: "counter" })]);
		const now = Date.now() - (Date.now() % PERIOD_MS);
		await fireTick(now - 2 * PERIOD_MS);
		await fireTick(now - PERIOD_MS);
		const result = await stats();
		expect(result.lastTick).toMatchObject({ scheduledTime: now - PERIOD_MS });
		expect(result.lastTick).not.toHaveProperty("recent");
		expect(result.lastHour.ticks).toBe(2);
		// Both pieces were due at the first tick; at the second only if their run had not yet moved them on.
		expect(result.lastHour.dispatched).toBeGreaterThanOrEqual(2);
		// Minute by minute, for the dashboard's chart: 60 minutes, the current one last.
		const { perMinute } = result.lastHour;
		expect(perMinute).toHaveLength(60);
		expect(perMinute.at(-1)!.at).toBe(now);
		expect(perMinute.find((m) => m.at === now - 2 * PERIOD_MS)!.dispatched).toBe(2);
		expect(perMinute.reduce((sum, m) => sum + m.dispatched, 0)).toBe(result.lastHour.dispatched);
		// Ticks more than an hour before the last one drop out of its record.
		await fireTick(now + 60 * PERIOD_MS);
		expect((await stats()).lastHour.ticks).toBe(1);
	});
});
