import { describe, expect, it } from "vitest";
import { DEFAULT_MAX_PIECES, capacity, maxPieces, registrySize } from "../../src/policy/capacity";

describe("the registry's cap, counted by the last tick", () => {
	it("reads MAX_PIECES, else the default", () => {
		expect(maxPieces("250")).toBe(250);
		for (const bad of [undefined, "", "0", "-3", "1.5", "lots"]) expect(maxPieces(bad)).toBe(DEFAULT_MAX_PIECES);
	});

	it("counts lane 0's pieces times the lanes, nothing before the first tick", () => {
		expect(registrySize(null)).toBeNull();
		expect(registrySize({ listed: 1_200, lanes: 1 })).toBe(1_200);
		expect(registrySize({ listed: 1_200, lanes: 4 })).toBe(4_800);
	});

	it("is near from 90 % and full at the cap", () => {
		expect(capacity(null, 100)).toEqual({ state: "ok", pieces: 0, max: 100 });
		expect(capacity(89, 100).state).toBe("ok");
		expect(capacity(90, 100).state).toBe("near");
		expect(capacity(100, 100).state).toBe("full");
		expect(capacity(140, 100).state).toBe("full");
	});
});
