import { describe, expect, it } from "vitest";
import { classifyDispatch } from "../../src/policy/acks";
import { classifyResponse } from "../../src/policy/outcome";
import { NOT_FOUND_HOLD_MS, applyOutcome, heldUntil, registered, withEnabled } from "../../src/policy/schedule";
import { disabledBy } from "../../src/policy/state";
import type { PieceEntry } from "../../src/registry/entry";

const NOW = 1_767_225_600_000;
const run = { scheduledTime: NOW, now: NOW, runId: "tick:1", durationMs: 5 };
const fresh = (): PieceEntry => registered(null, { space: "did:key:z6Mkx", pieceId: "fid1:x", integration: "gmail" }, NOW - 60_000);

describe("a piece the runtime does not have (404, notFound)", () => {
	it("is what protocol 1's 404 and protocol 2's notFound say, and nothing else", () => {
		const v1 = (status: number) => classifyResponse(status, JSON.stringify({ error: "Error: No updater stream found for piece: fid1:x" }), "1");
		expect(v1(404)).toEqual({ kind: "failed", error: "Error: No updater stream found for piece: fid1:x", notFound: true });
		expect(v1(422)).toEqual({ kind: "failed", error: "Error: No updater stream found for piece: fid1:x" });
		const acks = JSON.stringify({ runs: [{ runId: "a", status: "failed", error: "gone", notFound: true }, { runId: "b", status: "failed", error: "raised" }, { runId: "c", status: "failed", error: "odd", notFound: "yes" }] });
		const verdict = classifyDispatch(200, acks, "2", null, ["a", "b", "c"]);
		if (verdict.kind !== "acked") throw new Error(verdict.kind);
		expect(Object.fromEntries(verdict.outcomes)).toEqual({ a: { kind: "failed", error: "gone", notFound: true }, b: { kind: "failed", error: "raised" }, c: { kind: "failed", error: "odd" } });
	});

	it("is disabled at its first such run, saying why, where another failure waits and runs again", () => {
		const gone = applyOutcome(fresh(), { kind: "failed", error: "Error: No updater stream found for piece: fid1:x", notFound: true }, run);
		expect(gone.event).toBe("disabled");
		expect(gone.entry).toMatchObject({ disabledAt: NOW, disabledBy: "not-found", failures: 1, lastRun: NOW, status: "Disabled: the runtime found no such piece or no bgUpdater: Error: No updater stream found for piece: fid1:x" });
		expect(disabledBy(gone.entry)).toBe("not-found");
		const raised = applyOutcome(fresh(), { kind: "failed", error: "boom" }, run);
		expect(raised).toMatchObject({ event: "failure", entry: { disabledAt: 0, failures: 1, status: "boom" } });
		expect(raised.entry.disabledBy).toBeUndefined();
		// Three failures in a row still disable, by failures.
		const third = applyOutcome({ ...fresh(), failures: 2 }, { kind: "failed", error: "boom" }, run);
		expect(third.entry).toMatchObject({ disabledBy: "failures", status: "Disabled: boom" });
	});

	it("is held against re-registration for NOT_FOUND_HOLD_MS from when it was disabled, and then re-enabled once", () => {
		const gone = applyOutcome(fresh(), { kind: "failed", error: "gone", notFound: true }, run).entry;
		expect(NOT_FOUND_HOLD_MS).toBe(60 * 60_000);
		expect(heldUntil(gone, NOW)).toBe(NOW + NOT_FOUND_HOLD_MS);
		expect(heldUntil(gone, NOW + NOT_FOUND_HOLD_MS - 1)).toBe(NOW + NOT_FOUND_HOLD_MS);
		expect(heldUntil(gone, NOW + NOT_FOUND_HOLD_MS)).toBeNull();
		const again = registered(gone, gone, NOW + NOT_FOUND_HOLD_MS);
		expect(again).toMatchObject({ disabledAt: 0, failures: 0, nextRunAt: 0, status: "Re-initializing" });
		expect(again.disabledBy).toBeUndefined();
		// Pieces its failures or an operator disabled are never held.
		expect(heldUntil(applyOutcome({ ...fresh(), failures: 2 }, { kind: "failed", error: "boom" }, run).entry, NOW)).toBeNull();
		expect(heldUntil(withEnabled(fresh(), false, NOW), NOW)).toBeNull();
	});

	it("an operator's disable and enable say who, and an enable clears it", () => {
		const off = withEnabled(fresh(), false, NOW);
		expect(off.disabledBy).toBe("operator");
		expect(disabledBy(off)).toBe("operator");
		expect(withEnabled(off, true, NOW + 1).disabledBy).toBeUndefined();
		// An entry disabled before disabledBy was kept: read from its status, as before.
		expect(disabledBy({ disabledAt: 5, status: "Disabled via UI" })).toBe("operator");
		expect(disabledBy({ disabledAt: 5, status: "Disabled: boom" })).toBe("failures");
	});
});
