import { describe, expect, it } from "vitest";
import { RUNTIME_HEALTH_REFRESH_MS, healthAfter } from "../../src/policy/runtime-health";

const T = 1_800_000_000_000;

describe("healthAfter: meta/runtime is written only when an outage begins, lasts long, or ends", () => {
	it("the first unavailable run begins an outage", () => {
		expect(healthAfter(null, "unavailable", "down", T)).toEqual({ state: "unavailable", since: T, reason: "down", checkedAt: T });
		expect(healthAfter({ state: "ok", since: T - 5, reason: "", checkedAt: T - 5 }, "unavailable", "down", T)).toMatchObject({ state: "unavailable", since: T });
	});

	it("a lasting outage writes nothing until it is RUNTIME_HEALTH_REFRESH_MS old, then keeps its first since", () => {
		const outage = { state: "unavailable" as const, since: T, reason: "down", checkedAt: T };
		expect(healthAfter(outage, "unavailable", "still down", T + RUNTIME_HEALTH_REFRESH_MS - 1)).toBeNull();
		expect(healthAfter(outage, "unavailable", "still down", T + RUNTIME_HEALTH_REFRESH_MS)).toEqual({ state: "unavailable", since: T, reason: "still down", checkedAt: T + RUNTIME_HEALTH_REFRESH_MS });
	});

	it("any answer of a runtime ends an outage; with none, nothing is written", () => {
		const outage = { state: "unavailable" as const, since: T, reason: "down", checkedAt: T };
		for (const event of ["success", "failure", "disabled", "skipped"] as const) {
			expect(healthAfter(outage, event, "", T + 9)).toEqual({ state: "ok", since: T + 9, reason: "", checkedAt: T + 9 });
			expect(healthAfter(null, event, "", T)).toBeNull();
			expect(healthAfter({ state: "ok", since: T, reason: "", checkedAt: T }, event, "", T + 1)).toBeNull();
		}
	});
});
