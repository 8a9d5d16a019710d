import { describe, expect, it } from "vitest";
import { oneOffMessage, tickMessage } from "../../src/messages";
import { admit, record, type Finished } from "../../src/policy/decide";
import { REPLAY_REFUSED, afterReplay } from "../../src/policy/outcome";
import { PERIOD_MS, registered } from "../../src/policy/schedule";
import type { PieceEntry } from "../../src/registry/entry";
import { T0, newPieceId, newSpace } from "../ids";

const HOUR = 3_600_000;

/** An enabled piece that keeps succeeding, as stored. */
function steadyEntry(overrides: Partial<PieceEntry> = {}): PieceEntry {
	const base = registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "counter" }, T0 - HOUR);
	return { ...base, status: "Success", lastRun: T0 - PERIOD_MS, nextRunAt: T0, lastRunId: "tick:before", ...overrides };
}

const tick = (entry: PieceEntry, time = T0) => tickMessage({ ...entry, lastFailureAt: 0 }, time, time);
const finished = (overrides: Partial<Finished> = {}): Finished => ({ attempts: 1, started: T0 + 10, now: T0 + 2_000, durationMs: 1_990, heartbeat: HOUR, ...overrides });

describe("admit: what to do with a message before its run", () => {
	it("runs a tick's steady piece on the snapshot, without reading", () => {
		const entry = steadyEntry();
		expect(admit(tick(entry), 1, T0 + 5, undefined)).toEqual({ status: "run", notBefore: entry.updatedAt + 1000 });
	});

	it("asks for the entry for anything else: a failing piece, a retry, a one-off", () => {
		const failing = steadyEntry({ status: "boom", failures: 1 });
		expect(admit(tick(failing), 1, T0, undefined)).toEqual({ status: "read" });
		expect(admit(tick(steadyEntry()), 2, T0, undefined)).toEqual({ status: "read" });
		expect(admit(oneOffMessage("manual", steadyEntry(), T0), 1, T0, undefined)).toEqual({ status: "read" });
	});

	it("drops a stale tick message, and one whose piece is gone, disabled or already ran", () => {
		const entry = steadyEntry();
		expect(admit(tick(entry), 1, T0 + PERIOD_MS, undefined)).toMatchObject({ status: "drop", reason: expect.stringContaining("stale") });
		expect(admit(tick(entry), 2, T0, null)).toEqual({ status: "drop", reason: "not registered" });
		expect(admit(tick(entry), 2, T0, { ...entry, disabledAt: T0 - 1 })).toEqual({ status: "drop", reason: "disabled" });
		expect(admit(tick(entry), 2, T0, { ...entry, lastRunId: tick(entry).runId })).toMatchObject({ status: "drop" });
		expect(admit(tick(entry), 2, T0, { ...entry, nextRunAt: T0 + PERIOD_MS })).toMatchObject({ status: "drop", reason: expect.stringContaining("not due") });
	});

	it("waits a second after the entry's last write before running", () => {
		const entry = steadyEntry({ updatedAt: T0 - 200 });
		expect(admit(tick(entry), 2, T0, entry)).toEqual({ status: "run", notBefore: T0 + 800 });
	});
});

describe("record: what a finished run writes", () => {
	it("a steady piece's success writes and reads nothing until its heartbeat is due", () => {
		const entry = steadyEntry();
		expect(record(tick(entry), { kind: "ok" }, finished(), undefined)).toEqual({ status: "done", event: "success", error: "", write: null, retry: false });
		const due = record(tick(steadyEntry({ lastRun: T0 - 2 * HOUR })), { kind: "ok" }, finished(), undefined);
		expect(due).toEqual({ status: "read" });
	});

	it("a failure asks for the entry, then counts and is written with its history", () => {
		const entry = steadyEntry();
		expect(record(tick(entry), { kind: "failed", error: "boom" }, finished(), undefined)).toEqual({ status: "read" });
		const result = record(tick(entry), { kind: "failed", error: "boom" }, finished(), entry);
		expect(result).toMatchObject({ status: "done", event: "failure", error: "boom", retry: false, write: { failures: 1, status: "boom", nextRunAt: T0 + 2 * PERIOD_MS } });
		if (result.status === "done") expect(result.write?.history?.at(-1)).toMatchObject({ outcome: "failure", error: "boom" });
	});

	it("an outage counts nothing, is written once, and is retried once", () => {
		const entry = steadyEntry();
		const down = { kind: "unavailable", reason: "runtime answered HTTP 503" } as const;
		const first = record(tick(entry), down, finished(), entry);
		expect(first).toMatchObject({ status: "done", event: "unavailable", retry: true, write: { failures: 0, disabledAt: 0, unavailableSince: T0 + 2_000 } });
		const again = record(tick(entry), down, finished({ attempts: 2 }), first.status === "done" ? first.write! : entry);
		expect(again).toMatchObject({ status: "done", event: "unavailable", retry: false, write: null });
	});

	it("a duplicate (a replay refusal from an honest runtime) is dropped without reading or writing", () => {
		expect(record(tick(steadyEntry()), { kind: "duplicate" }, finished(), undefined)).toMatchObject({ status: "drop", reason: expect.stringContaining("duplicate delivery") });
	});

	it("a broken replay store is an outage: written once, counted nothing", () => {
		const entry = steadyEntry({ status: "Initializing", lastRun: 0 });
		const result = record(tick(entry), afterReplay({ alive: false, reason: "the probe was refused as a replay too" }), finished(), entry);
		expect(result).toMatchObject({ status: "done", event: "unavailable", write: { failures: 0, disabledAt: 0 } });
		if (result.status === "done") expect(result.write?.status).toContain(REPLAY_REFUSED);
	});

	it("a busy runtime skips the run: nothing counted, the piece stays due, the skip in its history", () => {
		const entry = steadyEntry();
		const result = record(tick(entry), { kind: "busy", runningRunId: "tick:prev", since: T0 - 90_000 }, finished(), entry);
		expect(result).toMatchObject({ status: "done", event: "skipped", retry: false });
		if (result.status !== "done") throw new Error("not done");
		expect(result.write).toMatchObject({ failures: 0, status: "Success", nextRunAt: entry.nextRunAt, lastRunId: entry.lastRunId });
		expect(result.write?.history?.at(-1)).toMatchObject({ outcome: "skipped", error: expect.stringContaining("run tick:prev is still going") });
	});

	it("an operator's change during the run wins; a failure from before a re-registration is not counted", () => {
		const entry = steadyEntry();
		expect(record(tick(entry), { kind: "failed", error: "x" }, finished(), null)).toMatchObject({ status: "drop" });
		expect(record(tick(entry), { kind: "failed", error: "x" }, finished(), { ...entry, disabledAt: T0 + 5 })).toMatchObject({ status: "drop" });
		expect(record(tick(entry), { kind: "failed", error: "x" }, finished(), { ...entry, updatedAt: T0 + 500 })).toMatchObject({ status: "drop", reason: "re-registered during the run" });
	});

	it("a skip is written once per run still going, and a runtime's garbage time is no crash", () => {
		const entry = steadyEntry();
		const busy = { kind: "busy", runningRunId: "tick:prev", since: 1e20 } as const;
		const first = record(tick(entry), busy, finished(), entry);
		if (first.status !== "done") throw new Error(first.status);
		expect(first.error).toBe("skipped: run tick:prev is still going (since an unknown time)");
		expect(first.write?.history?.at(-1)).toMatchObject({ outcome: "skipped", skippedFor: "tick:prev" });
		// The next tick's skip of the same run writes nothing; one for another run writes again.
		expect(record(tick(first.write!, T0 + PERIOD_MS), busy, finished(), first.write!)).toMatchObject({ status: "done", event: "skipped", write: null });
		expect(record(tick(first.write!, T0 + PERIOD_MS), { ...busy, runningRunId: "tick:other" }, finished(), first.write!)).toMatchObject({ status: "done", write: { failures: 0 } });
	});

	it("an outcome of a run begun before a later run was recorded is dropped (a resent or reordered report)", () => {
		const message = oneOffMessage("manual", steadyEntry(), T0);
		const laterFailure = steadyEntry({ lastFailureAt: T0 + 50, lastRunId: "manual:later", failures: 1, status: "boom" });
		expect(record(message, { kind: "failed", error: "boom" }, finished({ started: T0 + 10 }), laterFailure)).toEqual({ status: "drop", reason: "a later run was recorded during the run" });
		const laterSuccess = steadyEntry({ lastRun: T0 + 50 });
		expect(record(message, { kind: "failed", error: "boom" }, finished({ started: T0 + 10 }), laterSuccess)).toMatchObject({ status: "drop" });
		expect(record(message, { kind: "failed", error: "boom" }, finished({ started: T0 + 60 }), laterSuccess)).toMatchObject({ status: "done", event: "failure" });
	});
});
