import { describe, expect, it } from "vitest";
import { groupByPiece } from "../../src/delivery";
import { SEND_BATCH_MAX_BYTES, SEND_BATCH_MAX_MESSAGES, chunk } from "../../src/fanout";
import { oneOffMessage, tickMessage } from "../../src/messages";
import { unreachable, type RunOutcome } from "../../src/policy/outcome";
import { DEFAULT_SPREAD_SECONDS, MAX_CONSECUTIVE_FAILURES, PERIOD_MS, applyOutcome, isDue, registered, slotOf, spreadSeconds, withEnabled, type RunContext } from "../../src/policy/schedule";
import type { PieceEntry, RunRecord } from "../../src/registry/entry";
import { RUN_HISTORY_LENGTH, withRun } from "../../src/policy/history";
import { alreadyRecorded, heartbeatMs, isStale, mustRecord, trustsSnapshot } from "../../src/policy/record";
import { disabledBy, pieceState, recentRuns } from "../../src/policy/state";
import { decideImport, type ImportRow } from "../../src/policy/import";
import { NOT_FOUND_STATUS } from "../../src/policy/schedule";
import { PIECE_PREFIX, SHARD_COUNT, parsePieceKey, pieceKey, piecePrefix, shardOf, shardPrefix } from "../../src/registry/keys";
import { KV_METADATA_LIMIT, summarise } from "../../src/registry/store";
import { registrationSchema, type RunMessage } from "../../src/schema";
import { T0, newPieceId, newSpace } from "../helpers";

const encoder = new TextEncoder();
const utf8Length = (text: string): number => encoder.encode(text).length;

/** A registered, enabled piece that has run before, as the consumer would find it. */
function entry(overrides: Partial<PieceEntry> = {}): PieceEntry {
	return {
		space: newSpace(),
		pieceId: newPieceId(),
		integration: "counter",
		createdAt: T0 - 3_600_000,
		updatedAt: T0 - 3_600_000,
		disabledAt: 0,
		lastRun: T0 - PERIOD_MS,
		status: "Success",
		failures: 0,
		nextRunAt: T0,
		lastRunId: "tick:previous",
		lastError: "",
		lastDurationMs: 12,
		unavailableSince: 0,
		...overrides,
	};
}

/** A run of the tick at `scheduledTime` that finished `now`. */
function run(scheduledTime: number, now = scheduledTime + 1_234, runId = `tick:${scheduledTime}`): RunContext {
	return { scheduledTime, now, runId, durationMs: now - scheduledTime };
}

const failed = (error: string): RunOutcome => ({ kind: "failed", error });
const OK: RunOutcome = { kind: "ok" };
const DOWN: RunOutcome = { kind: "unavailable", reason: "runtime answered HTTP 503" };

describe("isDue", () => {
	it("is due when enabled and nextRunAt is at or before the tick", () => {
		expect(isDue({ disabledAt: 0, nextRunAt: 0 }, T0)).toBe(true);
		expect(isDue({ disabledAt: 0, nextRunAt: T0 - 1 }, T0)).toBe(true);
		expect(isDue({ disabledAt: 0, nextRunAt: T0 }, T0)).toBe(true);
	});

	it("is not due before nextRunAt", () => {
		expect(isDue({ disabledAt: 0, nextRunAt: T0 + 1 }, T0)).toBe(false);
		expect(isDue({ disabledAt: 0, nextRunAt: T0 + PERIOD_MS }, T0)).toBe(false);
	});

	it("is never due while disabled", () => {
		expect(isDue({ disabledAt: T0 - 5, nextRunAt: 0 }, T0)).toBe(false);
		expect(isDue({ disabledAt: 1, nextRunAt: T0 - PERIOD_MS }, T0)).toBe(false);
	});
});

describe("slotOf", () => {
	it("is the start of the minute", () => {
		expect(slotOf(T0)).toBe(T0);
		expect(slotOf(T0 + 1)).toBe(T0);
		expect(slotOf(T0 + 59_999)).toBe(T0);
		expect(slotOf(T0 + 60_000)).toBe(T0 + 60_000);
		expect(slotOf(T0 + 61_500)).toBe(T0 + 60_000);
	});

	it("puts the next due time of a one-off run on the next tick", () => {
		const now = T0 + 42_000;
		const message = oneOffMessage("manual", entry(), now);
		expect(message.scheduledTime).toBe(T0);
		const after = applyOutcome(entry(), OK, run(message.scheduledTime, now, message.runId)).entry;
		expect(after.nextRunAt).toBe(T0 + PERIOD_MS);
		expect(isDue(after, T0 + PERIOD_MS)).toBe(true);
		expect(isDue(after, T0)).toBe(false);
	});
});

describe("applyOutcome: the replaced service's policy", () => {
	it("disables on the third consecutive failure", () => {
		expect(MAX_CONSECUTIVE_FAILURES).toBe(3);
		expect(PERIOD_MS).toBe(60_000);
	});

	it("failure 1: status is the error, next run 120 s after the tick", () => {
		const before = entry();
		const { entry: after, event } = applyOutcome(before, failed("boom"), run(T0, T0 + 900, "tick:1"));
		expect(event).toBe("failure");
		expect(after.failures).toBe(1);
		expect(after.status).toBe("boom");
		expect(after.lastError).toBe("boom");
		expect(after.nextRunAt).toBe(T0 + 120_000);
		expect(after.disabledAt).toBe(0);
		// lastRun is stamped on every attempt, as the replaced service did; the last success stays.
		expect(after.lastRun).toBe(T0 + 900);
		expect(after.lastSuccessAt).toBe(before.lastSuccessAt);
		expect(after.lastRunId).toBe("tick:1");
		expect(after.lastDurationMs).toBe(900);
	});

	it("failure 2: next run 180 s after the tick", () => {
		const { entry: after, event } = applyOutcome(entry({ failures: 1, status: "boom" }), failed("boom again"), run(T0));
		expect(event).toBe("failure");
		expect(after.failures).toBe(2);
		expect(after.status).toBe("boom again");
		expect(after.nextRunAt).toBe(T0 + 180_000);
		expect(after.disabledAt).toBe(0);
	});

	it("failure 3: disabled now, status `Disabled: <error>`", () => {
		const now = T0 + 5_000;
		const { entry: after, event } = applyOutcome(entry({ failures: 2 }), failed("still broken"), run(T0, now));
		expect(event).toBe("disabled");
		expect(after.failures).toBe(3);
		expect(after.disabledAt).toBe(now);
		expect(after.status).toBe("Disabled: still broken");
		expect(after.lastError).toBe("still broken");
		expect(isDue(after, T0 + 10 * PERIOD_MS)).toBe(false);
	});

	it("three failures in a row, from a fresh entry, walk 120 s, 180 s, then disable", () => {
		let piece = registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "fail" }, T0 - 1);
		const first = applyOutcome(piece, failed("e"), run(T0));
		piece = first.entry;
		expect([first.event, piece.failures, piece.nextRunAt]).toEqual(["failure", 1, T0 + 120_000]);
		const second = applyOutcome(piece, failed("e"), run(piece.nextRunAt));
		piece = second.entry;
		expect([second.event, piece.failures, piece.nextRunAt]).toEqual(["failure", 2, T0 + 120_000 + 180_000]);
		const third = applyOutcome(piece, failed("e"), run(piece.nextRunAt, piece.nextRunAt + 7));
		expect(third.event).toBe("disabled");
		expect(third.entry.disabledAt).toBe(T0 + 300_007);
	});

	it("a success resets failures, sets status Success and lastRun, next run 60 s after the tick", () => {
		const now = T0 + 2_500;
		const before = entry({ failures: 2, status: "boom", lastError: "boom", unavailableSince: T0 - 60_000 });
		const { entry: after, event } = applyOutcome(before, OK, run(T0, now, "tick:ok"));
		expect(event).toBe("success");
		expect(after.failures).toBe(0);
		expect(after.status).toBe("Success");
		expect(after.lastRun).toBe(now);
		expect(after.lastSuccessAt).toBe(now);
		expect(after.nextRunAt).toBe(T0 + 60_000);
		expect(after.unavailableSince).toBe(0);
		expect(after.lastRunId).toBe("tick:ok");
		expect(after.lastDurationMs).toBe(2_500);
		// The last error stays for diagnosis.
		expect(after.lastError).toBe("boom");
	});

	it("after a success, a failure counts from 1 again", () => {
		const reset = applyOutcome(entry({ failures: 2 }), OK, run(T0)).entry;
		const { entry: after, event } = applyOutcome(reset, failed("x"), run(T0 + PERIOD_MS));
		expect(event).toBe("failure");
		expect(after.failures).toBe(1);
		expect(after.disabledAt).toBe(0);
	});

	it("unavailable changes neither failures, nextRunAt, disabledAt nor lastRunId", () => {
		const before = entry({ failures: 2, nextRunAt: T0, lastRunId: "tick:earlier", lastRun: T0 - 600_000 });
		const now = T0 + 3_000;
		const { entry: after, event } = applyOutcome(before, DOWN, run(T0, now, "tick:this"));
		expect(event).toBe("unavailable");
		expect(after.failures).toBe(2);
		expect(after.nextRunAt).toBe(T0);
		expect(after.disabledAt).toBe(0);
		expect(after.lastRunId).toBe("tick:earlier");
		expect(after.lastRun).toBe(T0 - 600_000);
		expect(after.unavailableSince).toBe(now);
		expect(after.status).toContain("runtime answered HTTP 503");
		expect(after.status).toContain(new Date(now).toISOString());
	});

	it("many outages in a row never disable a piece", () => {
		let piece = entry({ failures: 2 });
		for (let i = 0; i < 10; i++) piece = applyOutcome(piece, DOWN, run(T0 + i * PERIOD_MS)).entry;
		expect(piece.disabledAt).toBe(0);
		expect(piece.failures).toBe(2);
	});

	it("keeps the first unavailableSince during a continuing outage", () => {
		const first = applyOutcome(entry(), DOWN, run(T0, T0 + 100)).entry;
		expect(first.unavailableSince).toBe(T0 + 100);
		const second = applyOutcome(first, unreachable("connection refused"), run(T0 + PERIOD_MS, T0 + PERIOD_MS + 200)).entry;
		expect(second.unavailableSince).toBe(T0 + 100);
		expect(second.status).toContain(new Date(T0 + 100).toISOString());
		expect(second.status).toContain("connection refused");
	});

	it("a failure ends an outage", () => {
		const down = applyOutcome(entry(), DOWN, run(T0)).entry;
		const after = applyOutcome(down, failed("x"), run(T0 + PERIOD_MS)).entry;
		expect(after.unavailableSince).toBe(0);
	});

	it("does not mutate the entry it is given", () => {
		const before = entry({ failures: 1 });
		const copy = structuredClone(before);
		applyOutcome(before, failed("x"), run(T0));
		applyOutcome(before, OK, run(T0));
		applyOutcome(before, DOWN, run(T0));
		expect(before).toEqual(copy);
	});
});

describe("registered", () => {
	it("creates a new entry: Initializing, due at the next tick", () => {
		const fields = registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "gmail" }, 1_000);
		const created = registered(null, fields, T0 + 17);
		expect(created).toEqual({
			...fields,
			createdAt: T0 + 17,
			updatedAt: T0 + 17,
			disabledAt: 0,
			lastRun: 0,
			status: "Initializing",
			failures: 0,
			nextRunAt: 0,
			lastRunId: "",
			lastError: "",
			lastDurationMs: 0,
			unavailableSince: 0,
		});
		expect(isDue(created, T0)).toBe(true);
	});

	it("re-enables a disabled entry, forgives its failures, keeps createdAt", () => {
		const existing = entry({ disabledAt: T0 - 1_000, failures: 3, status: "Disabled: boom", nextRunAt: T0 - 5 * PERIOD_MS, createdAt: T0 - 999_999, lastRun: T0 - 77 });
		const now = T0 + 50;
		const after = registered(existing, { space: existing.space, pieceId: existing.pieceId, integration: "gmail" }, now);
		expect(after.disabledAt).toBe(0);
		expect(after.status).toBe("Re-initializing");
		expect(after.failures).toBe(0);
		expect(after.nextRunAt).toBe(0);
		expect(after.updatedAt).toBe(now);
		expect(after.createdAt).toBe(T0 - 999_999);
		expect(after.lastRun).toBe(T0 - 77);
		expect(after.integration).toBe("gmail");
		expect(isDue(after, T0)).toBe(true);
	});

	it("re-registering an enabled entry forgives its failures and keeps its cadence", () => {
		const existing = entry({ failures: 2, status: "boom", nextRunAt: T0 + 3 * PERIOD_MS, createdAt: T0 - 10 });
		const after = registered(existing, { space: existing.space, pieceId: existing.pieceId, integration: existing.integration }, T0 + 1);
		expect(after.disabledAt).toBe(0);
		expect(after.status).toBe("Re-initializing");
		expect(after.failures).toBe(0);
		expect(after.nextRunAt).toBe(T0 + 3 * PERIOD_MS);
		expect(after.createdAt).toBe(T0 - 10);
		expect(after.updatedAt).toBe(T0 + 1);
	});
});

describe("withEnabled", () => {
	it("disabling sets `Disabled via UI` and disabledAt", () => {
		const after = withEnabled(entry(), false, T0 + 9);
		expect(after.status).toBe("Disabled via UI");
		expect(after.disabledAt).toBe(T0 + 9);
		expect(after.updatedAt).toBe(T0 + 9);
		expect(isDue(after, T0 + 100 * PERIOD_MS)).toBe(false);
	});

	it("disabling an already disabled piece keeps when it was disabled", () => {
		const after = withEnabled(entry({ disabledAt: T0 - 500, status: "Disabled: boom" }), false, T0);
		expect(after.disabledAt).toBe(T0 - 500);
		expect(after.status).toBe("Disabled via UI");
	});

	it("enabling a disabled piece: `Initializing...`, failures 0, due at the next tick", () => {
		const after = withEnabled(entry({ disabledAt: T0 - 500, failures: 3, nextRunAt: T0 + PERIOD_MS, status: "Disabled: boom" }), true, T0 + 3);
		expect(after.disabledAt).toBe(0);
		expect(after.status).toBe("Initializing...");
		expect(after.failures).toBe(0);
		expect(after.nextRunAt).toBe(0);
		expect(after.updatedAt).toBe(T0 + 3);
		expect(isDue(after, T0)).toBe(true);
	});

	it("enabling an enabled piece returns the same object, unchanged", () => {
		const before = entry({ failures: 1, status: "boom" });
		const copy = structuredClone(before);
		const after = withEnabled(before, true, T0 + 3);
		expect(after).toBe(before);
		expect(after).toEqual(copy);
	});
});

describe("registry keys", () => {
	it("round-trips fid1 pieces", () => {
		for (const ref of [
			{ space: newSpace(), pieceId: newPieceId() },
			{ space: newSpace(), pieceId: `fid1:${"-_".repeat(21)}A` },
		]) {
			const key = pieceKey(ref);
			expect(key).toBe(`${shardPrefix(shardOf(ref.space))}${ref.space}/${ref.pieceId}`);
			expect(key).toMatch(/^piece\/[0-9a-f]{2}\/did:key:/);
			expect(parsePieceKey(key)).toEqual(ref);
		}
	});

	it("lists one space under its prefix, and every space under the bare prefix", () => {
		const space = newSpace();
		const key = pieceKey({ space, pieceId: newPieceId() });
		expect(piecePrefix()).toBe(PIECE_PREFIX);
		expect(key.startsWith(piecePrefix())).toBe(true);
		expect(piecePrefix(space)).toBe(`${shardPrefix(shardOf(space))}${space}/`);
		expect(key.startsWith(piecePrefix(space))).toBe(true);
		expect(key.startsWith(piecePrefix(newSpace()))).toBe(false);
	});

	it("does not let one space's prefix match a space that extends it", () => {
		const space = newSpace();
		const longer = pieceKey({ space: `${space}X`, pieceId: newPieceId() });
		expect(longer.startsWith(piecePrefix(space))).toBe(false);
	});

	it("rejects keys that do not name a piece", () => {
		expect(parsePieceKey("meta/last-tick")).toBeNull();
		expect(parsePieceKey("piece/")).toBeNull();
		expect(parsePieceKey("piece/did:key:z6Mkabc")).toBeNull();
		expect(parsePieceKey("piece/did:key:z6Mkabc/")).toBeNull();
		expect(parsePieceKey("piece//fid1:abc")).toBeNull();
		expect(parsePieceKey("pieces/a/b")).toBeNull();
		// A key of the previous, unsharded schema, and a key filed under the wrong shard.
		const space = newSpace();
		expect(parsePieceKey(`piece/${space}/${newPieceId()}`)).toBeNull();
		expect(parsePieceKey(`${shardPrefix((shardOf(space) + 1) % SHARD_COUNT)}${space}/${newPieceId()}`)).toBeNull();
	});

	it("puts every piece in exactly one shard, a space's pieces all in the same one, spread evenly", () => {
		const perShard = new Array<number>(SHARD_COUNT).fill(0);
		const spaces = Array.from({ length: 3_200 }, () => newSpace());
		for (const space of spaces) {
			const keys = [pieceKey({ space, pieceId: newPieceId() }), pieceKey({ space, pieceId: newPieceId() })];
			for (const key of keys) {
				const shards = Array.from({ length: SHARD_COUNT }, (_, s) => s).filter((s) => key.startsWith(shardPrefix(s)));
				expect(shards).toEqual([shardOf(space)]);
				expect(key.startsWith(piecePrefix(space))).toBe(true);
			}
			perShard[shardOf(space)]!++;
		}
		// 3,200 spaces over 16 shards: 200 each on average; a fair hash stays well within ±30 %.
		expect(Math.min(...perShard)).toBeGreaterThan(140);
		expect(Math.max(...perShard)).toBeLessThan(260);
		expect(new Set(Array.from({ length: SHARD_COUNT }, (_, s) => shardPrefix(s))).size).toBe(SHARD_COUNT);
	});
});

describe("summarise", () => {
	const metadataBytes = (piece: PieceEntry): number => utf8Length(JSON.stringify(summarise(piece)));
	const MAX_TIME = 9_999_999_999_999;
	/** An entry with every numeric field at its widest. */
	const widest = (status: string, integration: string): PieceEntry =>
		entry({ status, integration, createdAt: MAX_TIME, updatedAt: MAX_TIME, disabledAt: MAX_TIME, lastRun: MAX_TIME, nextRunAt: MAX_TIME, failures: 999, history: Array.from({ length: 20 }, () => ({ at: MAX_TIME, outcome: "unavailable" as const, durationMs: 1 })) });

	it("keeps exactly the summary fields", () => {
		const piece = entry({ status: "Success", failures: 1, lastFailureAt: 77, history: [{ at: 77, outcome: "failure", durationMs: 3, error: "x" }] });
		expect(summarise(piece)).toEqual({
			integration: piece.integration,
			createdAt: piece.createdAt,
			updatedAt: piece.updatedAt,
			disabledAt: piece.disabledAt,
			lastRun: piece.lastRun,
			status: "Success",
			failures: 1,
			nextRunAt: piece.nextRunAt,
			lastFailureAt: 77,
			lastSuccessAt: 0,
			recent: "f",
		});
		// An entry written before lastFailureAt or lastSuccessAt existed lists them as 0; of the history only its outcome letters reach metadata.
		expect(summarise({ ...piece, lastFailureAt: undefined, lastSuccessAt: undefined })).toMatchObject({ lastFailureAt: 0, lastSuccessAt: 0 });
	});

	it("keeps a short status whole and clips a long one with an ellipsis", () => {
		expect(summarise(entry({ status: "s".repeat(300) })).status).toBe("s".repeat(300));
		const clipped = summarise(entry({ status: "s".repeat(301) })).status;
		expect(clipped.length).toBe(300);
		expect(clipped).toBe(`${"s".repeat(299)}…`);
	});

	it("stays within 1,024 bytes with a 5,000-character emoji status and a 64-character integration", () => {
		expect(KV_METADATA_LIMIT).toBe(1024);
		const status = "😀".repeat(2_500);
		expect(status.length).toBe(5_000);
		for (const integration of ["i".repeat(64), "€".repeat(64), "😀".repeat(32)]) {
			expect(integration.length).toBe(64);
			expect(metadataBytes(widest(status, integration))).toBeLessThanOrEqual(KV_METADATA_LIMIT);
		}
	});

	it("stays within 1,024 bytes with a 5,000-character ASCII status full of characters JSON escapes", () => {
		expect(metadataBytes(widest('"\\'.repeat(2_500), "i".repeat(64)))).toBeLessThanOrEqual(KV_METADATA_LIMIT);
	});

	it("stays within 1,024 bytes with a 5,000-character CJK status (3-byte characters)", () => {
		expect(metadataBytes(widest("失".repeat(5_000), "€".repeat(64)))).toBeLessThanOrEqual(KV_METADATA_LIMIT);
	});

	it("stays within 1,024 bytes with a status of control characters (JSON-escaped to 6 bytes)", () => {
		expect(metadataBytes(widest("\u0001".repeat(5_000), "i".repeat(64)))).toBeLessThanOrEqual(KV_METADATA_LIMIT);
	});

	it("does not split a surrogate pair when it clips", () => {
		const clipped = summarise(entry({ status: "😀".repeat(2_500) })).status;
		expect(clipped.isWellFormed()).toBe(true);
	});
});

describe("chunk", () => {
	const messages = (count: number, extra = ""): RunMessage[] =>
		Array.from({ length: count }, (_, i) => {
			const message = tickMessage(registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "counter" }, 1_000), T0);
			return { ...message, runId: `${message.runId}#${i}${extra}` };
		});
	const batchBytes = (batch: RunMessage[]): number => batch.reduce((sum, m) => sum + utf8Length(JSON.stringify(m)), 0);

	it("returns no batch for no messages", () => {
		expect(chunk([])).toEqual([]);
	});

	it.each([1, 99, 100, 101, 250, 1_000])("splits %i small messages into batches of at most 100, in order, losing none", (count) => {
		const input = messages(count);
		const batches = chunk(input);
		expect(batches.length).toBe(Math.ceil(count / SEND_BATCH_MAX_MESSAGES));
		for (const batch of batches) {
			expect(batch.length).toBeGreaterThan(0);
			expect(batch.length).toBeLessThanOrEqual(SEND_BATCH_MAX_MESSAGES);
		}
		expect(batches.flat()).toEqual(input);
	});

	it("starts a new batch before SEND_BATCH_MAX_BYTES, in order, losing none", () => {
		// ~5 KB messages: about 40 fit in a batch, far fewer than 100.
		const input = messages(300, "x".repeat(5_000));
		const batches = chunk(input);
		expect(batches.length).toBeGreaterThan(Math.ceil(300 / SEND_BATCH_MAX_MESSAGES));
		for (const batch of batches) {
			expect(batch.length).toBeLessThan(SEND_BATCH_MAX_MESSAGES);
			expect(batchBytes(batch)).toBeLessThanOrEqual(SEND_BATCH_MAX_BYTES);
		}
		// Greedy: each batch but the last is full, i.e. the next message would not have fitted.
		for (let i = 0; i < batches.length - 1; i++) {
			const next = batches[i + 1]![0]!;
			expect(batchBytes(batches[i]!) + utf8Length(JSON.stringify(next))).toBeGreaterThan(SEND_BATCH_MAX_BYTES);
		}
		expect(batches.flat()).toEqual(input);
	});

	it("sends a single message larger than the budget alone rather than dropping it", () => {
		const [small1, small2] = messages(2);
		const [huge] = messages(1, "h".repeat(SEND_BATCH_MAX_BYTES + 10));
		const batches = chunk([small1!, huge!, small2!]);
		expect(batches).toEqual([[small1], [huge], [small2]]);
	});

	it("measures the byte budget in UTF-8 bytes", () => {
		const input = messages(200, "€".repeat(3_000));
		for (const batch of chunk(input)) expect(batchBytes(batch)).toBeLessThanOrEqual(SEND_BATCH_MAX_BYTES);
	});
});

describe("groupByPiece", () => {
	const delivery = (id: string, body: unknown) => ({ id, body });
	const ids = (groups: { id: string }[][]) => groups.map((group) => group.map((m) => m.id));

	it("groups one piece's messages together, oldest scheduledTime first", () => {
		const a = registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "counter" }, 1_000);
		const b = registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "counter" }, 1_000);
		const input = [
			delivery("a3", tickMessage(a, T0 + 2 * PERIOD_MS)),
			delivery("b1", tickMessage(b, T0)),
			delivery("a1", tickMessage(a, T0)),
			delivery("a2", oneOffMessage("manual", a, T0 + PERIOD_MS + 5)),
			delivery("b2", tickMessage(b, T0 + PERIOD_MS)),
		];
		const groups = groupByPiece(input);
		expect(groups).toHaveLength(2);
		expect(ids(groups)).toEqual([
			["a1", "a2", "a3"],
			["b1", "b2"],
		]);
		for (const group of groups) {
			const times = group.map((m) => (m.body as RunMessage).scheduledTime);
			expect(times).toEqual([...times].sort((x, y) => x - y));
		}
	});

	it("separates pieces with the same id in different spaces", () => {
		const pieceId = newPieceId();
		const groups = groupByPiece([
			delivery("s1", tickMessage(registered(null, { space: newSpace(), pieceId, integration: "c" }, 1_000), T0)),
			delivery("s2", tickMessage(registered(null, { space: newSpace(), pieceId, integration: "c" }, 1_000), T0)),
		]);
		expect(ids(groups)).toEqual([["s1"], ["s2"]]);
	});

	it("keeps each malformed body alone", () => {
		const piece = registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "counter" }, 1_000);
		const input = [
			delivery("null", null),
			delivery("string", "hello"),
			delivery("ok1", tickMessage(piece, T0 + PERIOD_MS)),
			delivery("empty1", {}),
			delivery("empty2", {}),
			delivery("number", 7),
			delivery("space-only", { space: piece.space }),
			delivery("wrong-type", { space: piece.space, pieceId: 12 }),
			delivery("ok0", tickMessage(piece, T0)),
		];
		const groups = groupByPiece(input);
		expect(groups.flat()).toHaveLength(input.length);
		expect(new Set(groups.flat().map((m) => m.id)).size).toBe(input.length);
		const malformed = ["null", "string", "empty1", "empty2", "number", "space-only", "wrong-type"];
		for (const id of malformed) expect(groups.find((g) => g.some((m) => m.id === id))).toHaveLength(1);
		expect(groups.find((g) => g.some((m) => m.id === "ok0"))!.map((m) => m.id)).toEqual(["ok0", "ok1"]);
	});
});

describe("KV key length", () => {
	it("stays within KV's 512-byte key limit for the longest ids validation accepts", () => {
		const space = `did:key:z${"z".repeat(120)}`;
		const pieceId = newPieceId();
		expect(registrationSchema.safeParse({ space, pieceId, integration: "x" }).success).toBe(true);
		expect(new TextEncoder().encode(pieceKey({ space, pieceId })).length).toBeLessThanOrEqual(512);
		// One character more is refused, so no longer key can be built.
		expect(registrationSchema.safeParse({ space: `${space}z`, pieceId, integration: "x" }).success).toBe(false);
	});
});

describe("spreadSeconds", () => {
	it("takes 0 to 60 whole seconds and falls back to the default otherwise", () => {
		expect(spreadSeconds("0")).toBe(0);
		expect(spreadSeconds("59")).toBe(59);
		expect(spreadSeconds("60")).toBe(60);
		for (const bad of [undefined, "", "61", "-1", "1.5", "abc"]) expect(spreadSeconds(bad)).toBe(DEFAULT_SPREAD_SECONDS);
	});
});

describe("write-on-change policy", () => {
	const steady = registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "counter" }, 1_000);
	const listed = { ...steady, status: "Success", lastRun: T0 - 10 * PERIOD_MS };
	const HOUR = 60 * 60_000;

	it("trusts a tick's snapshot only for a steady piece", () => {
		expect(trustsSnapshot(tickMessage(listed, T0))).toBe(true);
		expect(trustsSnapshot(tickMessage({ ...listed, failures: 1 }, T0))).toBe(false);
		expect(trustsSnapshot(tickMessage({ ...listed, status: "Initializing" }, T0))).toBe(false);
		expect(trustsSnapshot(oneOffMessage("manual", listed, T0))).toBe(false);
		expect(trustsSnapshot(oneOffMessage("register", listed, T0))).toBe(false);
	});

	it("records every outcome but a steady success before its heartbeat", () => {
		const message = tickMessage(listed, T0);
		expect(mustRecord(message, { kind: "ok" }, T0, HOUR)).toBe(false);
		expect(mustRecord(message, { kind: "ok" }, listed.lastRun + HOUR, HOUR)).toBe(true);
		expect(mustRecord(message, { kind: "failed", error: "x" }, T0, HOUR)).toBe(true);
		expect(mustRecord(message, { kind: "unavailable", reason: "x" }, T0, HOUR)).toBe(true);
		expect(mustRecord(oneOffMessage("manual", listed, T0), { kind: "ok" }, T0, HOUR)).toBe(true);
	});

	it("reads HEARTBEAT_MINUTES within 1 to 1,440, else 60", () => {
		expect(heartbeatMs(undefined)).toBe(HOUR);
		expect(heartbeatMs("5")).toBe(5 * 60_000);
		for (const bad of ["", "0", "-3", "1.5", "1441", "soon"]) expect(heartbeatMs(bad)).toBe(HOUR);
	});

	it("a tick message is stale a full period after its due time; one-offs never are", () => {
		const message = tickMessage(listed, T0, T0 + 30_000);
		expect(isStale(message, T0 + 30_000 + PERIOD_MS - 1)).toBe(false);
		expect(isStale(message, T0 + 30_000 + PERIOD_MS)).toBe(true);
		const { dueAt: _, ...legacy } = message;
		expect(isStale(legacy, T0 + PERIOD_MS)).toBe(true);
		expect(isStale(oneOffMessage("manual", listed, T0), T0 + 100 * PERIOD_MS)).toBe(false);
	});

});

describe("run history", () => {
	it("keeps the last 20 records, clipping long errors, with no error on a success", () => {
		let entry = registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "x" }, 1_000);
		for (let i = 0; i < 25; i++) entry = withRun(entry, i % 2 ? "success" : "failure", i, 3, "e".repeat(500));
		expect(entry.history).toHaveLength(RUN_HISTORY_LENGTH);
		expect(entry.history?.[0]?.at).toBe(5);
		expect(entry.history?.at(-1)).toMatchObject({ at: 24, outcome: "failure" });
		expect(Array.from((entry.history!.at(-1) as RunRecord).error!)).toHaveLength(200);
		expect(entry.history?.at(-2)).not.toHaveProperty("error");
	});

	it("puts each piece in one of four states that never overlap, and says who disabled a disabled one", () => {
		expect(pieceState({ disabledAt: 0, status: "Success", failures: 0 })).toBe("ok");
		expect(pieceState({ disabledAt: 0, status: "Initializing", failures: 0 })).toBe("pending");
		expect(pieceState({ disabledAt: 0, status: "Runtime unavailable since …", failures: 0 })).toBe("pending");
		expect(pieceState({ disabledAt: 0, status: "boom", failures: 1 })).toBe("failing");
		// Disabled by its failures: disabled (it will not run), not failing.
		expect(pieceState({ disabledAt: 5, status: "Disabled: boom", failures: 3 })).toBe("disabled");
		expect(disabledBy({ disabledAt: 5, status: "Disabled: boom" })).toBe("failures");
		expect(pieceState({ disabledAt: 5, status: "Disabled via UI", failures: 0 })).toBe("disabled");
		expect(disabledBy({ disabledAt: 5, status: "Disabled via UI" })).toBe("operator");
		expect(disabledBy({ disabledAt: 0, status: "Success" })).toBeNull();
		// An entry without the field (older, or imported) whose status says the runtime found nothing.
		expect(disabledBy({ disabledAt: 5, status: `Disabled: ${NOT_FOUND_STATUS}: Error: No updater stream found` })).toBe("not-found");
	});

	it("takes who disabled an imported piece from the row, not from the entry it replaces", () => {
		const space = newSpace();
		const pieceId = newPieceId();
		const notFound = { ...registered(null, { space, pieceId, integration: "counter" }, T0), disabledAt: T0 + 1_000, disabledBy: "not-found" as const, status: `Disabled: ${NOT_FOUND_STATUS}: gone` };
		const row = (fields: Partial<ImportRow>): ImportRow => ({ space, pieceId, integration: "counter", createdAt: T0, updatedAt: T0 + 5_000, disabledAt: 0, lastRun: T0 + 5_000, status: "Success", ...fields });
		const byOperator = decideImport(notFound, row({ disabledAt: T0 + 5_000, status: "Disabled via UI" }));
		expect(byOperator).toMatchObject({ outcome: "updated", entry: { disabledBy: "operator" } });
		const enabled = decideImport(notFound, row({}));
		expect(enabled.outcome).toBe("updated");
		expect("entry" in enabled && enabled.entry).not.toHaveProperty("disabledBy");
		// Into an empty Worker, a not-found piece stays not-found (and held).
		expect(decideImport(null, row({ disabledAt: T0 + 5_000, status: notFound.status }))).toMatchObject({ entry: { disabledBy: "not-found" } });
	});

	it("keeps the last 12 recorded outcomes as one letter each, for the list's strip", () => {
		const run = (outcome: RunRecord["outcome"]) => ({ at: 1, outcome, durationMs: 1 });
		expect(recentRuns(undefined)).toBe("");
		expect(recentRuns([run("success"), run("failure"), run("disabled"), run("unavailable"), run("skipped")])).toBe("sfduk");
		expect(recentRuns(Array.from({ length: 20 }, (_, i) => run(i < 19 ? "success" : "failure")))).toBe("sssssssssssf");
	});
});

describe("alreadyRecorded", () => {
	it("holds for an enabled, succeeding piece whose lastRun is fresher than the heartbeat", () => {
		const steady = { disabledAt: 0, status: "Success", failures: 0, lastRun: T0 };
		expect(alreadyRecorded(steady, T0 + 59 * PERIOD_MS, 60 * PERIOD_MS)).toBe(true);
		expect(alreadyRecorded(steady, T0 + 60 * PERIOD_MS, 60 * PERIOD_MS)).toBe(false);
		expect(alreadyRecorded({ ...steady, failures: 1 }, T0, 60 * PERIOD_MS)).toBe(false);
		expect(alreadyRecorded({ ...steady, status: "Runtime unavailable since …" }, T0, 60 * PERIOD_MS)).toBe(false);
		expect(alreadyRecorded({ ...steady, disabledAt: 5 }, T0, 60 * PERIOD_MS)).toBe(false);
	});

	it("a retry never trusts the tick's snapshot", () => {
		const listed = { ...registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "c" }, 1_000), status: "Success" };
		expect(trustsSnapshot(tickMessage(listed, T0), 1)).toBe(true);
		expect(trustsSnapshot(tickMessage(listed, T0), 2)).toBe(false);
	});
});
