import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { handleMessage, handleQueue } from "../../src/consumer";
import { tickMessage } from "../../src/messages";
import { PERIOD_MS } from "../../src/policy/schedule";
import type { PieceEntry } from "../../src/registry/entry";
import { pieceKey } from "../../src/registry/keys";
import { getEntry, getRuntimeHealth } from "../../src/registry/store";
import { T0, runCount, seedPiece } from "../helpers";

/** The real local KV namespace, with every call counted by method. */
function countingKv(): { kv: KVNamespace; calls: Record<string, number> } {
	const calls: Record<string, number> = {};
	const kv = new Proxy(env.REGISTRY, {
		get(target, name: string) {
			const value = Reflect.get(target, name) as unknown;
			if (typeof value !== "function") return value;
			return (...args: unknown[]) => {
				calls[name] = (calls[name] ?? 0) + 1;
				return (value as (...a: unknown[]) => unknown).apply(target, args);
			};
		},
	});
	return { kv, calls };
}

/** A piece that has been succeeding, as a tick lists it; lastRun `ageMs` ago. */
function steadyPiece(overrides: Partial<PieceEntry> = {}, ageMs = 5 * 60_000): Promise<PieceEntry> {
	const lastRun = Date.now() - ageMs;
	return seedPiece({ status: "Success", lastRun, nextRunAt: T0, updatedAt: lastRun - PERIOD_MS, ...overrides });
}

async function stored(piece: PieceEntry): Promise<string | null> {
	return env.REGISTRY.get(pieceKey(piece));
}

describe("write on change: a run that changes nothing touches no KV", () => {
	it("a steady piece's successful tick run reads nothing and writes nothing", async () => {
		const piece = await steadyPiece();
		const before = await stored(piece);
		const { kv, calls } = countingKv();
		expect(await handleMessage(tickMessage(piece, T0), 1, { ...env, REGISTRY: kv })).toBe("ran");
		expect(await runCount(piece)).toBe(1);
		expect(calls).toEqual({});
		expect(await stored(piece)).toBe(before);
	});

	it("a steady piece records its lastRun once the heartbeat is due", async () => {
		const piece = await steadyPiece({}, 61 * 60_000);
		const { kv, calls } = countingKv();
		const startedAt = Date.now();
		expect(await handleMessage(tickMessage(piece, T0), 1, { ...env, REGISTRY: kv, HEARTBEAT_MINUTES: "60" })).toBe("ran");
		expect(calls).toEqual({ get: 1, put: 1 });
		const after = await getEntry(env, piece);
		expect(after?.lastRun).toBeGreaterThanOrEqual(startedAt);
		expect(after?.nextRunAt).toBe(T0 + PERIOD_MS);
	});

	it("a shorter HEARTBEAT_MINUTES records sooner", async () => {
		const piece = await steadyPiece({}, 6 * 60_000);
		const { kv, calls } = countingKv();
		await handleMessage(tickMessage(piece, T0), 1, { ...env, REGISTRY: kv, HEARTBEAT_MINUTES: "5" });
		expect(calls.put).toBe(1);
	});

	it("a heartbeat the tick's (lagging) listing thought due, but already written, is not written again", async () => {
		const piece = await steadyPiece({}, 5 * 60_000);
		const listedLongAgo = tickMessage({ ...piece, lastRun: Date.now() - 61 * 60_000 }, T0);
		const { kv, calls } = countingKv();
		expect(await handleMessage(listedLongAgo, 1, { ...env, REGISTRY: kv })).toBe("ran");
		expect(calls).toEqual({ get: 1 });
	});

	it("a retry after the runtime was unavailable reads first, and records the recovery", async () => {
		const piece = await steadyPiece();
		const message = tickMessage(piece, T0);
		expect(await handleMessage(message, 1, { ...env, RUNTIME: undefined, PIECE_RUNTIME_URL: "" })).toBe("retry");
		expect((await getEntry(env, piece))?.status).toMatch(/^Runtime unavailable/);
		await new Promise((resolve) => setTimeout(resolve, 1_000));
		const { kv, calls } = countingKv();
		expect(await handleMessage(message, 2, { ...env, REGISTRY: kv })).toBe("ran");
		// The entry read twice and written once; the runtime's health (meta/runtime) read and set back to ok.
		expect(calls).toEqual({ get: 3, put: 2 });
		expect((await getEntry(env, piece))?.status).toBe("Success");
		expect(await getRuntimeHealth(env)).toMatchObject({ state: "ok", reason: "" });
	});

	it("a steady piece that fails is read and written: the failure counts", async () => {
		const piece = await steadyPiece({ integration: "fail" });
		const { kv, calls } = countingKv();
		await handleMessage(tickMessage(piece, T0), 1, { ...env, REGISTRY: kv });
		expect(calls).toEqual({ get: 1, put: 1 });
		expect((await getEntry(env, piece))?.failures).toBe(1);
	});

	it("a runtime outage is written once, then only read while it lasts", async () => {
		const piece = await steadyPiece();
		const down = { ...env, RUNTIME: undefined, PIECE_RUNTIME_URL: "" };
		const first = countingKv();
		await handleMessage(tickMessage(piece, T0), 1, { ...down, REGISTRY: first.kv });
		// The entry read and written; the runtime's health read and written (the outage begins).
		expect(first.calls).toEqual({ get: 2, put: 2 });
		const during = await getEntry(env, piece);
		expect(during?.status).toMatch(/^Runtime unavailable since/);
		const outage = await getRuntimeHealth(env);
		expect(outage).toMatchObject({ state: "unavailable", reason: expect.stringContaining("no runtime configured") });
		expect(Math.abs(outage!.since - during!.unavailableSince)).toBeLessThan(1_000);

		// The next tick lists the piece as it is now: no longer steady, so it is checked first.
		await new Promise((resolve) => setTimeout(resolve, 1_000));
		const second = countingKv();
		await handleMessage(tickMessage(during!, T0 + PERIOD_MS), 2, { ...down, REGISTRY: second.kv });
		// Read before and after the run, and the health read: the outage is already recorded.
		expect(second.calls).toEqual({ get: 3 });
		expect(await getEntry(env, piece)).toEqual(during);
		expect(await getRuntimeHealth(env)).toEqual(outage);
	});

	it("an operator's disable made after the tick listed the piece stands", async () => {
		const piece = await steadyPiece();
		const message = tickMessage(piece, T0);
		const disabled = { ...piece, disabledAt: Date.now(), status: "Disabled via UI" };
		await env.REGISTRY.put(pieceKey(piece), JSON.stringify(disabled));
		await handleMessage(message, 1, env);
		// The run was already dispatched; its outcome changes nothing, so nothing overwrites the disable.
		expect(await getEntry(env, piece)).toEqual(disabled);
	});

	it("a piece deleted after the tick listed it stays deleted", async () => {
		const piece = await steadyPiece();
		const message = tickMessage(piece, T0);
		await env.REGISTRY.delete(pieceKey(piece));
		await handleMessage(message, 1, env);
		expect(await getEntry(env, piece)).toBeNull();
	});
});

describe("duplicates and stale messages", () => {
	it("the same steady run delivered twice in separate batches runs once", async () => {
		const piece = await steadyPiece();
		const message = tickMessage(piece, T0);
		const { kv, calls } = countingKv();
		expect(await handleMessage(message, 1, { ...env, REGISTRY: kv })).toBe("ran");
		// The runtime refuses the second copy as a replay (same runId and attempt): dropped, nothing written.
		expect(await handleMessage(message, 1, { ...env, REGISTRY: kv })).toBe("dropped");
		expect(await runCount(piece)).toBe(1);
		expect(calls).toEqual({});
	});

	it("the same run twice in one batch is handled once", async () => {
		const piece = await steadyPiece();
		const body = tickMessage(piece, T0);
		const acked: string[] = [];
		const message = (id: string) => ({ id, timestamp: new Date(), attempts: 1, body, ack: () => acked.push(id), retry: () => {} });
		await handleQueue({ queue: "bg-piece-runs", messages: [message("a"), message("b")], ackAll() {}, retryAll() {} } as unknown as MessageBatch, env);
		expect(acked.sort()).toEqual(["a", "b"]);
		expect(await runCount(piece)).toBe(1);
	});

	it("a tick message a full period past its due time is dropped as stale, without running", async () => {
		const piece = await steadyPiece();
		const late = tickMessage(piece, T0, Date.now() - PERIOD_MS - 1);
		expect(await handleMessage(late, 1, env)).toBe("dropped");
		expect(await runCount(piece)).toBe(0);
		// Just inside the period it still runs.
		const onTime = tickMessage(piece, T0 + PERIOD_MS, Date.now() - PERIOD_MS + 5_000);
		expect(await handleMessage(onTime, 1, env)).toBe("ran");
		expect(await runCount(piece)).toBe(1);
	});
});

describe("run history rides on the writes that happen anyway", () => {
	it("records failures, a disable and a recovery; a steady success adds nothing", async () => {
		const piece = await steadyPiece({ integration: "fail" });
		await handleMessage(tickMessage(piece, T0), 1, env);
		const failed = await getEntry(env, piece);
		expect(failed?.history).toEqual([{ at: expect.any(Number), outcome: "failure", durationMs: expect.any(Number), error: "example failure: the fail piece raised an error" }]);
		expect(failed?.lastFailureAt).toBe(failed?.history?.[0]?.at);

		// The piece is fixed (re-registered as counter) and succeeds: recorded, since status changes.
		const fixed = { ...failed!, integration: "counter", updatedAt: 0 };
		await env.REGISTRY.put(pieceKey(piece), JSON.stringify(fixed));
		await handleMessage(tickMessage(fixed, T0 + 2 * PERIOD_MS), 1, env);
		const recovered = await getEntry(env, piece);
		expect(recovered?.history?.map((r) => r.outcome)).toEqual(["failure", "success"]);

		// Now steady: its next success writes nothing, so records nothing.
		await new Promise((resolve) => setTimeout(resolve, 1_000));
		await handleMessage(tickMessage(recovered!, T0 + 3 * PERIOD_MS), 1, env);
		expect((await getEntry(env, piece))?.history).toHaveLength(2);
	});
});
