import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, newPieceId, newSpace, registerPiece } from "./helpers";

describe("smoke", () => {
	it("answers health", async () => {
		const t = Date.now();
		const response = await call("/api/health");
		console.log("health ms", Date.now() - t);
		expect(response.status).toBe(200);
		expect(env.ADMIN_TOKEN).toBe("test-admin-token");
		const r = await registerPiece({ space: newSpace(), pieceId: newPieceId(), integration: "counter" });
		expect(r.status).toBe(200);
	});
});
