import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PERIOD_MS, slotOf } from "../../src/policy/schedule";
import type { PieceEntry } from "../../src/registry/entry";
import { pieceKey } from "../../src/registry/keys";
import { call, eventually, fireTick, newPieceId, newSpace, piecePath, registerPiece, runCount } from "../helpers";

/** The entry as the API answers it, once `ready` holds. */
function awaitEntry(space: string, pieceId: string, ready: (entry: PieceEntry) => boolean): Promise<PieceEntry> {
	return eventually(async () => {
		const response = await call(piecePath(space, pieceId));
		if (response.status !== 200) return undefined;
		const entry = await response.json<PieceEntry>();
		return ready(entry) ? entry : undefined;
	}, 15_000);
}

describe("end to end, through real local KV, Queues and the reference runtime", () => {
	it("registration → run at once → ticks → Success every period", async () => {
		const space = newSpace();
		const pieceId = newPieceId();
		const before = slotOf(Date.now());
		const response = await registerPiece({ space, pieceId, integration: "counter" });
		expect(await response.json()).toMatchObject({ success: true });
		const after = slotOf(Date.now());

		// A new piece runs at once, through the queue, and is next due a period after the minute
		// it registered in (the minute may turn while it registers).
		const first = await awaitEntry(space, pieceId, (e) => e.status === "Success");
		expect(first.lastRun).toBeGreaterThan(0);
		const slot = first.nextRunAt - PERIOD_MS;
		expect([before, after]).toContain(slot);
		const stored = await env.REGISTRY.get(pieceKey({ space, pieceId }));

		// A tick before the next due time dispatches nothing; the tick at it runs the piece.
		await fireTick(slot + PERIOD_MS - 1);
		await fireTick(slot + PERIOD_MS);
		await eventually(async () => ((await runCount({ space, pieceId })) === 2 ? true : undefined));
		// A success of a piece that was already succeeding changes nothing, so nothing is
		// written: the entry is the first run's, to the byte (lastRun waits for its heartbeat).
		expect(await env.REGISTRY.get(pieceKey({ space, pieceId }))).toBe(stored);
		const tick = await env.REGISTRY.get<{ dispatched: number }>("meta/last-tick", "json");
		expect(tick?.dispatched).toBeGreaterThanOrEqual(1);
	});

	it("a failing piece backs off, is disabled on the third failure, and re-registering re-enables it", async () => {
		const space = newSpace();
		const pieceId = newPieceId();
		const before = slotOf(Date.now());
		await registerPiece({ space, pieceId, integration: "fail" });
		const after = slotOf(Date.now());
		const one = await awaitEntry(space, pieceId, (e) => e.failures === 1);
		// Backed off two periods from the minute it registered in (which may turn meanwhile).
		const slot = one.nextRunAt - 2 * PERIOD_MS;
		expect([before, after]).toContain(slot);

		await fireTick(slot + 2 * PERIOD_MS);
		const two = await awaitEntry(space, pieceId, (e) => e.failures === 2);
		expect(two.nextRunAt).toBe(slot + 5 * PERIOD_MS);

		await fireTick(slot + 5 * PERIOD_MS);
		const three = await awaitEntry(space, pieceId, (e) => e.disabledAt > 0);
		expect(three.status).toBe("Disabled: example failure: the fail piece raised an error");

		// Disabled: later ticks do not run it.
		await fireTick(slot + 9 * PERIOD_MS);
		await new Promise((resolve) => setTimeout(resolve, 2_500));
		expect((await awaitEntry(space, pieceId, () => true)).failures).toBe(3);

		const again = await registerPiece({ space, pieceId, integration: "fail" });
		expect(await again.json()).toMatchObject({ success: true });
		const reenabled = await awaitEntry(space, pieceId, (e) => e.disabledAt === 0 && e.failures === 1);
		expect(reenabled.status).toBe("example failure: the fail piece raised an error");
	});
});
