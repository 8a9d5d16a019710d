import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { errorResponse } from "../../src/api/errors";
import { register } from "../../src/api/registration";
import { newPieceId, newSpace, seedPiece } from "../helpers";

/** KV's refusal of a second write of one key within a second, as Workers reports it. */
const RATE_LIMITED = new Error("KV PUT failed: 429 Too Many Requests");

/** The registry with every put refused for rate, as production KV does for a hot key. */
const refusingPuts: KVNamespace = new Proxy(env.REGISTRY, {
	get(target, prop) {
		if (prop === "put") return () => Promise.reject(RATE_LIMITED);
		const value = Reflect.get(target, prop);
		return typeof value === "function" ? value.bind(target) : value;
	},
});

function registration(fields: { space: string; pieceId: string; integration: string }) {
	const request = new Request("https://scheduler.test/api/integrations/bg", { method: "POST", body: JSON.stringify(fields) });
	return Object.assign(request, { route: "/api/integrations/bg", params: {}, query: {} });
}

describe("KV's one write per second per key", () => {
	it("a refused write answers 429 with Retry-After, not a 500", async () => {
		const response = errorResponse(RATE_LIMITED);
		expect(response.status).toBe(429);
		expect(response.headers.get("retry-after")).toBe("1");
		expect(await response.json()).toEqual({ success: false, error: "this piece was written a moment ago; try again in a second" });
	});

	it("a registration refused while a concurrent identical one landed answers success", async () => {
		const piece = await seedPiece({ integration: "gmail" });
		const answer = await register(registration({ space: piece.space, pieceId: piece.pieceId, integration: "gmail" }), { ...env, REGISTRY: refusingPuts });
		expect(answer).toMatchObject({ success: true });
	});

	it("a registration refused with nothing like it stored is passed on (429 from the error handler)", async () => {
		const fields = { space: newSpace(), pieceId: newPieceId(), integration: "gmail" };
		await expect(register(registration(fields), { ...env, REGISTRY: refusingPuts })).rejects.toBe(RATE_LIMITED);
	});
});
