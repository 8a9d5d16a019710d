import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import { api } from "../../src/api";
import { tokenFingerprint } from "../../src/api/admin-tokens";
import type { PieceEntry } from "../../src/registry/entry";
import { getEntry } from "../../src/registry/store";
import { newTeam } from "../access";
import { newPieceId, newSpace, piecePath, seedPiece } from "../helpers";

/** Who makes the requests: the settings of the deployment, the headers that sign in, and how logs and history name them. */
interface Actor {
	name: string;
	settings: () => Promise<Partial<Env>>;
	headers: () => Promise<Record<string, string>>;
	by: () => Promise<string>;
}

// Made on first use: a module's top level may not do I/O in workerd.
let made: ReturnType<typeof newTeam> | undefined;
const team = () => (made ??= newTeam());
const actors: Actor[] = [
	{ name: "an admin token", settings: async () => ({}), headers: async () => ({ authorization: `Bearer ${env.ADMIN_TOKEN}` }), by: async () => `token:${await tokenFingerprint(env.ADMIN_TOKEN!)}` },
	{
		name: "the second of two admin tokens (a rotation)",
		settings: async () => ({ ADMIN_TOKEN: "first-token second-token" }),
		headers: async () => ({ authorization: "Bearer second-token" }),
		by: async () => `token:${await tokenFingerprint("second-token")}`,
	},
	{ name: "an Access identity", settings: async () => (await team()).settings, headers: async () => ({ "cf-access-jwt-assertion": await (await team()).jwt({ email: "alice@example.com" }) }), by: async () => "access:alice@example.com" },
	{
		name: "an Access service token",
		settings: async () => (await team()).settings,
		headers: async () => ({ "cf-access-jwt-assertion": await (await team()).jwt({ common_name: "2f8e1c3b.access" }) }),
		by: async () => "access-service-token:2f8e1c3b.access",
	},
];

let logs: MockInstance<typeof console.log>;
beforeEach(() => {
	logs = vi.spyOn(console, "log");
});
afterEach(() => logs.mockRestore());

/** The `admin-change` events logged so far. */
function auditEvents(): Array<Record<string, unknown>> {
	return logs.mock.calls
		.map(([line]) => (typeof line === "string" && line.startsWith("{") ? (JSON.parse(line) as Record<string, unknown>) : null))
		.filter((event): event is Record<string, unknown> => event?.event === "admin-change");
}

describe.each(actors)("the audit trail, as $name", (actor) => {
	async function request(path: string, init: RequestInit = {}): Promise<Response> {
		const headers = { ...(await actor.headers()), ...(init.body ? { "content-type": "application/json" } : {}) };
		return api.fetch(new Request(`https://scheduler.test${path}`, { ...init, headers }), { ...env, ...(await actor.settings()) }, createExecutionContext());
	}

	async function lastHistory(piece: { space: string; pieceId: string }) {
		return (await getEntry(env, piece))?.history?.at(-1);
	}

	it("disable: one event with who and the fields before → after, and the action in the piece's history", async () => {
		const piece = await seedPiece({ status: "Success" });
		const response = await request(piecePath(piece.space, piece.pieceId), { method: "PATCH", body: '{"enabled":false}' });
		expect(response.status).toBe(200);
		const stored = (await getEntry(env, piece))!;
		expect(auditEvents()).toEqual([
			{
				event: "admin-change",
				action: "disable",
				by: await actor.by(),
				piece: `${piece.space}/${piece.pieceId}`,
				changes: { status: ["Success", "Disabled via UI"], disabledAt: [0, stored.disabledAt], disabledBy: [null, "operator"], updatedAt: [piece.updatedAt, stored.updatedAt] },
			},
		]);
		expect(stored.history?.at(-1)).toEqual({ at: stored.updatedAt, outcome: "admin", action: "disable", by: await actor.by() });
		// The answer carries the history too; the strip of recent runs leaves the action out.
		expect(((await response.json()) as { piece: PieceEntry }).piece.history?.at(-1)).toMatchObject({ outcome: "admin", action: "disable" });
	});

	it("enable: the event and the history record", async () => {
		const piece = await seedPiece({ disabledAt: 5_000, status: "Disabled via UI", history: [{ at: 4_000, outcome: "success", durationMs: 3 }] });
		expect((await request(piecePath(piece.space, piece.pieceId), { method: "PATCH", body: '{"enabled":true}' })).status).toBe(200);
		const [event] = auditEvents();
		expect(event).toMatchObject({ action: "enable", by: await actor.by(), changes: { status: ["Disabled via UI", "Initializing..."], disabledAt: [5_000, 0] } });
		const stored = (await getEntry(env, piece))!;
		expect(stored.history).toEqual([{ at: 4_000, outcome: "success", durationMs: 3 }, { at: stored.updatedAt, outcome: "admin", action: "enable", by: await actor.by() }]);
	});

	it("an enable of an enabled piece writes nothing: its event says so with no changes", async () => {
		const piece = await seedPiece();
		expect((await request(piecePath(piece.space, piece.pieceId), { method: "PATCH", body: '{"enabled":true}' })).status).toBe(200);
		expect(auditEvents()).toEqual([expect.objectContaining({ action: "enable", by: await actor.by(), changes: {} })]);
		expect(await getEntry(env, piece)).toEqual(piece);
	});

	it("run-now: the event with its runId, and the request in the piece's history", async () => {
		const piece = await seedPiece();
		const response = await request(`${piecePath(piece.space, piece.pieceId)}/run`, { method: "POST" });
		expect(response.status).toBe(202);
		const { runId } = (await response.json()) as { runId: string };
		expect(auditEvents()).toEqual([{ event: "admin-change", action: "run-now", by: await actor.by(), piece: `${piece.space}/${piece.pieceId}`, changes: {}, runId }]);
		expect(await lastHistory(piece)).toEqual({ at: expect.any(Number), outcome: "admin", action: "run-now", by: await actor.by() });
	});

	it("delete: the event keeps every field the piece had, since its history goes with it", async () => {
		const piece = await seedPiece({ status: "Success", integration: "gmail" });
		expect((await request(piecePath(piece.space, piece.pieceId), { method: "DELETE" })).status).toBe(200);
		expect(await getEntry(env, piece)).toBeNull();
		const [event] = auditEvents();
		expect(event).toMatchObject({ action: "delete", by: await actor.by(), piece: `${piece.space}/${piece.pieceId}` });
		expect(event!.changes).toMatchObject({ status: ["Success", null], integration: ["gmail", null], createdAt: [piece.createdAt, null], disabledAt: [0, null] });
	});

	it("import: an event per piece written (none for a dry run or an unchanged row), and the import in its history", async () => {
		const row = { space: newSpace(), pieceId: newPieceId(), integration: "gmail", createdAt: Date.now() - 86_400_000, updatedAt: Date.now() - 60_000, lastRun: 0, status: "Initializing" };
		const dry = await request("/api/admin/import", { method: "POST", body: JSON.stringify({ rows: [row], dryRun: true }) });
		expect(dry.status).toBe(200);
		expect(auditEvents()).toEqual([]);
		expect((await request("/api/admin/import", { method: "POST", body: JSON.stringify({ rows: [row] }) })).status).toBe(200);
		const events = auditEvents();
		expect(events).toHaveLength(1);
		expect(events[0]).toMatchObject({ action: "import", outcome: "created", by: await actor.by(), piece: `${row.space}/${row.pieceId}`, changes: { integration: [null, "gmail"], status: [null, "Initializing"] } });
		expect(await lastHistory(row)).toEqual({ at: expect.any(Number), outcome: "admin", action: "import", by: await actor.by() });
	});

	it("never logs a token, only its fingerprint", async () => {
		const piece = await seedPiece();
		await request(piecePath(piece.space, piece.pieceId), { method: "PATCH", body: '{"enabled":false}' });
		const logged = JSON.stringify(logs.mock.calls);
		for (const secret of [env.ADMIN_TOKEN!, "first-token", "second-token"]) expect(logged).not.toContain(secret);
		expect(auditEvents()).toHaveLength(1);
	});
});

describe("a refused admin request", () => {
	it("logs no audit event and records nothing", async () => {
		const logs = vi.spyOn(console, "log");
		try {
			const piece = await seedPiece();
			const response = await api.fetch(new Request(`https://scheduler.test${piecePath(piece.space, piece.pieceId)}`, { method: "DELETE", headers: { authorization: "Bearer wrong" } }), env, createExecutionContext());
			expect(response.status).toBe(401);
			expect(logs.mock.calls.flat().join("\n")).not.toContain("admin-change");
			expect(await getEntry(env, piece)).toEqual(piece);
		} finally {
			logs.mockRestore();
		}
	});
});
