import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api } from "../../src/api";
import { NOT_FOUND_HOLD_MS } from "../../src/policy/schedule";
import type { PieceEntry } from "../../src/registry/entry";
import { pieceKey } from "../../src/registry/keys";
import { getEntry, summarise } from "../../src/registry/store";
import { eventually, newClientAddress, newPieceId, newSpace, registerPiece, seedPiece } from "../helpers";

const REGISTER = "/api/integrations/bg";

/** A COUNTING WRAPPER around the real registry: every call goes through; puts are counted. */
function countingRegistry(): { registry: KVNamespace; puts: () => number } {
	let puts = 0;
	const registry = new Proxy(env.REGISTRY, {
		get(target, prop) {
			const value = Reflect.get(target, prop);
			if (prop === "put") return (...args: Parameters<KVNamespace["put"]>) => (puts++, target.put(...args));
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	return { registry, puts: () => puts };
}

/** A registration through the Worker's router, with the registry given; each from a client of its own. */
function registerWith(registry: KVNamespace, body: { space: string; pieceId: string; integration: string }): Promise<Response> {
	const request = new Request(`https://scheduler.test${REGISTER}`, { method: "POST", headers: { "cf-connecting-ip": newClientAddress() }, body: JSON.stringify(body) });
	return api.fetch(request, { ...env, REGISTRY: registry }, createExecutionContext());
}

/** Rewrites a stored entry as if it were written long ago (straight to KV, as seedPiece does). */
async function rewrite(entry: PieceEntry): Promise<void> {
	await env.REGISTRY.put(pieceKey(entry), JSON.stringify(entry), { metadata: summarise(entry) });
}

describe("a burst of re-registrations of one pair costs at most one KV write a second", () => {
	it("an enabled piece: 50 at once write once", async () => {
		const piece = await seedPiece({ integration: "counter", status: "Success" });
		const { registry, puts } = countingRegistry();
		const answers = await Promise.all(Array.from({ length: 50 }, () => registerWith(registry, { space: piece.space, pieceId: piece.pieceId, integration: "counter" })));
		expect(answers.map((answer) => answer.status)).toEqual(Array(50).fill(200));
		expect(puts()).toBe(1);
		expect(await getEntry(env, piece)).toMatchObject({ status: "Re-initializing", disabledAt: 0 });
	});

	it("a disabled piece: 50 at once re-enable it with one write", async () => {
		const piece = await seedPiece({ integration: "counter", disabledAt: 5_000, disabledBy: "failures", status: "Disabled: boom", failures: 3 });
		const { registry, puts } = countingRegistry();
		const answers = await Promise.all(Array.from({ length: 50 }, () => registerWith(registry, { space: piece.space, pieceId: piece.pieceId, integration: "counter" })));
		expect(answers.map((answer) => answer.status)).toEqual(Array(50).fill(200));
		expect(puts()).toBe(1);
		expect(await getEntry(env, piece)).toMatchObject({ disabledAt: 0, failures: 0 });
	});

	it("one after another for over two seconds: a write a second at most", async () => {
		const piece = await seedPiece({ integration: "counter", status: "Success" });
		const { registry, puts } = countingRegistry();
		const started = Date.now();
		let sent = 0;
		while (Date.now() - started < 2_500) {
			expect((await registerWith(registry, { space: piece.space, pieceId: piece.pieceId, integration: "counter" })).status).toBe(200);
			sent++;
			await new Promise((resolve) => setTimeout(resolve, 50));
		}
		const elapsed = Date.now() - started;
		expect(sent).toBeGreaterThan(20);
		expect(puts()).toBeGreaterThanOrEqual(2);
		expect(puts()).toBeLessThanOrEqual(Math.floor(elapsed / 1000) + 1);
	});
});

describe("a piece the runtime found missing (404) cannot be kept running by re-registering it", () => {
	it("is disabled at its first run; re-registered within the hold it stays so (409, Retry-After, no write); after it, it runs once more", { timeout: 30_000 }, async () => {
		const body = { space: newSpace(), pieceId: newPieceId(), integration: "missing" };
		expect((await registerPiece(body)).status).toBe(200);
		// The registration's run: the runtime answers 404, and the piece is disabled at once.
		const gone = await eventually(async () => {
			const entry = await getEntry(env, body);
			return entry?.disabledBy === "not-found" ? entry : undefined;
		});
		expect(gone).toMatchObject({ failures: 1, status: `Disabled: the runtime found no such piece or no bgUpdater: Error: No updater stream found for piece: ${body.pieceId}` });

		// A loop of re-registrations within the hold: each refused, none written.
		const { registry, puts } = countingRegistry();
		const answers = await Promise.all(Array.from({ length: 20 }, () => registerWith(registry, body)));
		for (const answer of answers) {
			expect(answer.status).toBe(409);
			const retryAfter = Number(answer.headers.get("retry-after"));
			expect(retryAfter).toBeGreaterThan(NOT_FOUND_HOLD_MS / 1000 - 60);
			expect(retryAfter).toBeLessThanOrEqual(NOT_FOUND_HOLD_MS / 1000);
			expect(await answer.json()).toEqual({
				success: false,
				error: `piece ${body.space}/${body.pieceId} stays disabled: the runtime found no such piece or no bgUpdater at ${new Date(gone.disabledAt).toISOString()}; a registration may enable it again from ${new Date(gone.disabledAt + NOT_FOUND_HOLD_MS).toISOString()}`,
			});
		}
		expect(puts()).toBe(0);
		expect(await getEntry(env, body)).toEqual(gone);

		// The hold is over: a registration re-enables it, its run finds it missing again, and the hold starts again.
		await rewrite({ ...gone, disabledAt: Date.now() - NOT_FOUND_HOLD_MS - 1_000, updatedAt: Date.now() - NOT_FOUND_HOLD_MS });
		const again = await registerPiece(body);
		expect(again.status).toBe(200);
		expect(await again.json()).toMatchObject({ success: true, message: `Re-registered piece ${body.space}/${body.pieceId}` });
		const goneAgain = await eventually(async () => {
			const entry = await getEntry(env, body);
			return entry?.disabledBy === "not-found" && entry.lastRunId !== gone.lastRunId ? entry : undefined;
		});
		expect(goneAgain.disabledAt).toBeGreaterThan(gone.disabledAt);
		expect((await registerPiece(body)).status).toBe(409);
	});

	it("an operator may still enable it at once (the hold binds registrations only)", async () => {
		const piece = await seedPiece({ integration: "missing", disabledAt: Date.now() - 1_000, disabledBy: "not-found", status: "Disabled: the runtime found no such piece or no bgUpdater: gone", failures: 1 });
		const response = await api.fetch(
			new Request(`https://scheduler.test${REGISTER}/${piece.space}/${piece.pieceId}`, { method: "PATCH", headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` }, body: JSON.stringify({ enabled: true }) }),
			env,
			createExecutionContext(),
		);
		expect(response.status).toBe(200);
		const entry = await getEntry(env, piece);
		expect(entry).toMatchObject({ disabledAt: 0, status: "Initializing..." });
		expect(entry!.disabledBy).toBeUndefined();
	});
});
