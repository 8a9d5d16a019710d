import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { api } from "../../src/api";
import { getEntry } from "../../src/registry/store";
import { newClientAddress, seedPiece } from "../helpers";

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
		const piece = await seedPiece({ integration: "counter", disabledAt: 5_000, status: "Disabled: boom", failures: 3 });
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
