import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { PieceEntry } from "../../src/registry/entry";
import { getEntry } from "../../src/registry/store";
import { listAll } from "../api/client";
import { admin, call, newPieceId, newSpace, piecePath, seedPiece } from "../helpers";
import { HOSTILE_SEGMENTS, hostileRegistrations } from "./corpus";

/** The whole registry as the admin list shows it (every field of every summary), plus the full entries named. */
async function registrySnapshot(...pieces: PieceEntry[]): Promise<string> {
	const listed = (await listAll()).map((piece) => JSON.stringify(piece)).sort();
	const entries = await Promise.all(pieces.map((piece) => getEntry(env, piece)));
	return JSON.stringify({ listed, entries });
}

/** Asserts a refusal: a 4xx with a JSON `{success: false, error}` that says something. */
async function expectRefusal(response: Response, what: string): Promise<void> {
	expect(response.status, what).toBeGreaterThanOrEqual(400);
	expect(response.status, what).toBeLessThan(500);
	const body = (await response.json()) as { success?: boolean; error?: unknown };
	expect(body.success, what).toBe(false);
	expect(typeof body.error === "string" && body.error.length > 5, what).toBe(true);
}

describe("hostile input: every refusal is a 4xx with a message, and nothing changes", () => {
	it("refuses a corpus of at least 300 malformed registration bodies", async () => {
		const seeded = await seedPiece();
		const before = await registrySnapshot(seeded);
		const corpus = hostileRegistrations();
		expect(corpus.length).toBeGreaterThanOrEqual(300);
		const statuses = new Map<number, number>();
		for (const { name, body, contentType } of corpus) {
			const headers: Record<string, string> = contentType ? { "content-type": contentType } : {};
			const response = await call("/api/integrations/bg", { method: "POST", headers, body });
			statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
			await expectRefusal(response, name);
		}
		expect(await registrySnapshot(seeded)).toEqual(before);
		// Both the validation (400) and the size limit (413) were reached.
		expect(statuses.get(400)).toBeGreaterThan(250);
		expect(statuses.get(413)).toBeGreaterThan(0);
	});

	it("refuses malformed path parameters on every route", async () => {
		const piece = await seedPiece();
		const before = await registrySnapshot(piece);
		const space = newSpace();
		const pieceId = newPieceId();
		let tried = 0;
		for (const segment of HOSTILE_SEGMENTS) {
			for (const path of [piecePath(segment, pieceId), piecePath(segment, piece.pieceId), piecePath(space, segment), piecePath(segment, segment), piecePath(piece.space, segment)]) {
				const routes: [string, RequestInit, boolean][] = [
					[path, { method: "GET" }, false],
					[path, { method: "PATCH", body: '{"enabled":false}' }, true],
					[path, { method: "DELETE" }, true],
					[`${path}/run`, { method: "POST" }, true],
				];
				for (const [url, init, needsAdmin] of routes) {
					const response = await (needsAdmin ? admin(url, init) : call(url, init));
					await expectRefusal(response, `${init.method} ${url.slice(0, 120)}`);
					tried++;
				}
			}
		}
		expect(tried).toBeGreaterThanOrEqual(300);
		expect(await registrySnapshot(piece)).toEqual(before);
	});

	it("refuses malformed list queries", async () => {
		for (const query of ["limit=0", "limit=-5", "limit=1001", "limit=abc", "limit=1e3", "limit=", "limit=1&limit=2", "space=did:web:x", "space=", "space=%00", "cursor=a&cursor=b"]) {
			await expectRefusal(await admin(`/api/integrations/bg?${query}`), query);
		}
	});
});
