import { describe, expect, it } from "vitest";
import { changedFields } from "../../src/policy/audit";
import { RUN_HISTORY_LENGTH, withAdminAction, withRun } from "../../src/policy/history";
import { registered } from "../../src/policy/schedule";
import { recentRuns } from "../../src/policy/state";
import { newPieceId, newSpace } from "../ids";

const piece = () => registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "gmail" }, 1_000);

describe("admin actions in a piece's history", () => {
	it("sit beside the runs, oldest first, within the same length", () => {
		let entry = withRun(piece(), "success", 2_000, 5, "");
		entry = withAdminAction(entry, "disable", "access:alice@example.com", 3_000);
		expect(entry.history).toEqual([
			{ at: 2_000, outcome: "success", durationMs: 5 },
			{ at: 3_000, outcome: "admin", action: "disable", by: "access:alice@example.com" },
		]);
		for (let i = 0; i < 30; i++) entry = withAdminAction(entry, "run-now", "token:0123abcd", 4_000 + i);
		expect(entry.history).toHaveLength(RUN_HISTORY_LENGTH);
		expect(entry.history?.at(-1)).toMatchObject({ at: 4_029, action: "run-now" });
	});

	it("are left out of the strip of recent runs", () => {
		let entry = withRun(piece(), "success", 2_000, 5, "");
		entry = withAdminAction(entry, "disable", "token:0123abcd", 3_000);
		entry = withRun(entry, "failure", 4_000, 5, "Error: x");
		expect(recentRuns(entry.history)).toBe("sf");
	});
});

describe("changedFields: an admin change's fields before → after", () => {
	it("lists only what changed, never the history", () => {
		const before = piece();
		const after = withAdminAction({ ...before, status: "Disabled via UI", disabledAt: 5_000, updatedAt: 5_000 }, "disable", "token:0123abcd", 5_000);
		expect(changedFields(before, after)).toEqual({ status: ["Initializing", "Disabled via UI"], disabledAt: [0, 5_000], updatedAt: [1_000, 5_000] });
		expect(changedFields(before, before)).toEqual({});
	});

	it("has every field with null after for a deleted piece, and null before for a created one", () => {
		const entry = piece();
		const gone = changedFields(entry, null);
		expect(gone).toMatchObject({ space: [entry.space, null], status: ["Initializing", null], integration: ["gmail", null] });
		expect(gone).not.toHaveProperty("history");
		// A field that was 0 is still a field the piece had.
		expect(gone.disabledAt).toEqual([0, null]);
		expect(changedFields(null, entry)).toMatchObject({ pieceId: [null, entry.pieceId], createdAt: [null, 1_000] });
	});
});
