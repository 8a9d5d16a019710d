import { base58, base64urlnopad } from "@scure/base";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { health } from "../../src/api/health";
import { putLastTick, type TickSummary } from "../../src/registry/store";
import { T0, admin, call, eventually, newPieceId, newSpace, piecePath, registerPiece, runCount, seedPiece } from "../helpers";
import { LIST, type ListPage, type Outcome, getEntry, list, read, sleep } from "./client";

interface Health {
	status: string;
	did: string | null;
	runtime: { via: string; protocol: number; timeoutMs: number; state: string; since: number | null; reason: string | null } | null;
	lastTick: TickSummary | null;
	problems: string[];
}

function patch(space: string, pieceId: string, body: BodyInit, headers: Record<string, string> = { "content-type": "application/json" }): Promise<Response> {
	return admin(piecePath(space, pieceId), { method: "PATCH", headers, body });
}

async function expectError(response: Response, status: number, mentions?: RegExp): Promise<string> {
	expect(response.status).toBe(status);
	const result = await read<Outcome>(response);
	expect(result.success).toBe(false);
	expect(typeof result.error).toBe("string");
	expect(result.error?.length).toBeGreaterThan(0);
	if (mentions) expect(result.error).toMatch(mentions);
	return result.error ?? "";
}

/** `Identity.fromPassphrase(p).did()`, computed here independently of src/identity. */
async function didOfPassphrase(passphrase: string): Promise<string> {
	const seed = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(passphrase)));
	const pkcs8 = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20, ...seed]);
	const key = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "Ed25519" }, true, ["sign"]);
	const jwk = (await crypto.subtle.exportKey("jwk", key)) as JsonWebKey;
	const publicKey = base64urlnopad.decode(jwk.x ?? "");
	expect(publicKey).toHaveLength(32);
	return `did:key:z${base58.encode(new Uint8Array([0xed, 0x01, ...publicKey]))}`;
}

/** One request per admin route, against a piece that exists. */
function adminRoutes(space: string, pieceId: string): Array<{ name: string; path: string; init: RequestInit }> {
	return [
		{ name: "list", path: LIST, init: {} },
		{ name: "list one space", path: `${LIST}?space=${space}`, init: {} },
		{ name: "patch", path: piecePath(space, pieceId), init: { method: "PATCH", body: JSON.stringify({ enabled: false }) } },
		{ name: "delete", path: piecePath(space, pieceId), init: { method: "DELETE" } },
		{ name: "run", path: `${piecePath(space, pieceId)}/run`, init: { method: "POST" } },
	];
}

describe("admin auth", () => {
	const badHeaders: Array<[string, Record<string, string>]> = [
		["no header", {}],
		["an empty header", { authorization: "" }],
		["a wrong token", { authorization: "Bearer not-the-admin-token" }],
		["the token with a suffix", { authorization: `Bearer ${env.ADMIN_TOKEN}x` }],
		["a prefix of the token", { authorization: `Bearer ${env.ADMIN_TOKEN?.slice(0, -1)}` }],
		["the token in upper case", { authorization: `Bearer ${env.ADMIN_TOKEN?.toUpperCase()}` }],
		["Bearer without a token", { authorization: "Bearer" }],
		["Bearer and a space", { authorization: "Bearer " }],
		["the bare token", { authorization: `${env.ADMIN_TOKEN}` }],
		["Basic with the token", { authorization: `Basic ${env.ADMIN_TOKEN}` }],
		["Basic credentials", { authorization: `Basic ${btoa(`admin:${env.ADMIN_TOKEN}`)}` }],
		["Bearer glued to the token", { authorization: `Bearer${env.ADMIN_TOKEN}` }],
		["two tokens", { authorization: `Bearer ${env.ADMIN_TOKEN} ${env.ADMIN_TOKEN}` }],
		["the token in another header", { "x-admin-token": `${env.ADMIN_TOKEN}` }],
		["the token in the query", {}],
	];

	it("has a test token configured", () => {
		expect(env.ADMIN_TOKEN).toBe("test-admin-token");
	});

	it.each(badHeaders)("refuses %s with 401 on every admin route and changes nothing", async (name, headers) => {
		const seeded = await seedPiece();
		for (const route of adminRoutes(seeded.space, seeded.pieceId)) {
			const path = name === "the token in the query" ? `${route.path}${route.path.includes("?") ? "&" : "?"}token=${env.ADMIN_TOKEN}` : route.path;
			const response = await call(path, { ...route.init, headers });
			const error = await expectError(response, 401);
			expect(error, route.name).toMatch(/token/i);
			expect(error).not.toContain(`${env.ADMIN_TOKEN}`);
			expect(response.headers.get("www-authenticate") ?? "", route.name).toMatch(/^Bearer/i);
		}
		// Neither disabled nor deleted.
		const entry = await getEntry(seeded.space, seeded.pieceId);
		expect(entry.disabledAt).toBe(0);
		expect(entry.status).toBe(seeded.status);
		expect(entry.updatedAt).toBe(seeded.updatedAt);
	});

	it("queues no run for a refused run-now", async () => {
		const seeded = await seedPiece();
		expect((await call(`${piecePath(seeded.space, seeded.pieceId)}/run`, { method: "POST", headers: { authorization: "Bearer nope" } })).status).toBe(401);
		// Longer than the queue's batch timeout (2 s): a queued run would have happened by now.
		await sleep(3_000);
		expect((await getEntry(seeded.space, seeded.pieceId)).lastRunId).toBe("");
		expect(await runCount(seeded)).toBe(0);
	});

	it("refuses a wrong token even for an unknown piece (401 before 404)", async () => {
		const response = await call(piecePath(newSpace(), newPieceId()), { method: "DELETE" });
		await expectError(response, 401);
	});

	it("accepts the right token, with the scheme in any case", async () => {
		const seeded = await seedPiece();
		for (const scheme of ["Bearer", "bearer", "BEARER"]) {
			const response = await call(`${LIST}?space=${seeded.space}`, { headers: { authorization: `${scheme} ${env.ADMIN_TOKEN}` } });
			expect(response.status, scheme).toBe(200);
			const page = await read<ListPage>(response);
			expect(page.pieces.map((piece) => piece.pieceId)).toEqual([seeded.pieceId]);
		}
	});
});

describe("GET /api/integrations/bg (list)", () => {
	it("pages past 1,000 pieces with the cursor, each piece once", async () => {
		const space = newSpace();
		const seeded = new Set<string>();
		for (let batch = 0; batch < 12; batch++) {
			const entries = await Promise.all(Array.from({ length: 100 }, () => seedPiece({ space })));
			for (const entry of entries) seeded.add(entry.pieceId);
		}
		expect(seeded.size).toBe(1_200);

		const first = await list(`space=${space}&limit=1000`);
		expect(first.pieces).toHaveLength(1_000);
		expect(first.complete).toBe(false);
		expect(typeof first.cursor).toBe("string");
		expect(first.cursor).not.toBe("");

		const second = await list(`space=${space}&limit=1000&cursor=${encodeURIComponent(first.cursor ?? "")}`);
		expect(second.pieces).toHaveLength(200);
		expect(second.complete).toBe(true);
		expect(second.cursor).toBeNull();

		const ids = [...first.pieces, ...second.pieces].map((piece) => piece.pieceId);
		expect(new Set(ids).size).toBe(ids.length);
		expect(new Set(ids)).toEqual(seeded);
		for (const piece of [...first.pieces, ...second.pieces]) {
			expect(piece.space).toBe(space);
			expect(piece).toMatchObject({ integration: "counter", disabledAt: 0, enabled: true, status: "Initializing" });
		}

		// Smaller pages walk the same set.
		const walked: string[] = [];
		let cursor: string | null = null;
		let pages = 0;
		do {
			const page: ListPage = await list(`space=${space}&limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
			expect(page.pieces.length).toBeLessThanOrEqual(500);
			walked.push(...page.pieces.map((piece) => piece.pieceId));
			cursor = page.cursor;
			expect(page.complete).toBe(cursor === null);
			pages++;
		} while (cursor && pages < 10);
		expect(pages).toBe(3);
		expect(walked).toHaveLength(1_200);
		expect(new Set(walked)).toEqual(seeded);

		// Without the space filter, every one of them is listed too.
		const everything: string[] = [];
		cursor = null;
		pages = 0;
		do {
			const page: ListPage = await list(`limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
			everything.push(...page.pieces.filter((piece) => piece.space === space).map((piece) => piece.pieceId));
			cursor = page.cursor;
			pages++;
		} while (cursor && pages < 20);
		expect(cursor).toBeNull();
		expect(everything).toHaveLength(1_200);
		expect(new Set(everything)).toEqual(seeded);
	});

	it("pages 100 at a time by default and honours small limits", async () => {
		const space = newSpace();
		await Promise.all(Array.from({ length: 105 }, () => seedPiece({ space })));
		const page = await list(`space=${space}`);
		expect(page.pieces).toHaveLength(100);
		expect(page.complete).toBe(false);
		const rest = await list(`space=${space}&cursor=${encodeURIComponent(page.cursor ?? "")}`);
		expect(rest.pieces).toHaveLength(5);
		expect(rest.complete).toBe(true);

		const one = await list(`space=${space}&limit=1`);
		expect(one.pieces).toHaveLength(1);
		expect(one.complete).toBe(false);
	});

	it.each(["0", "1001", "abc", "-1", "1.5", "", "1e3", " 10", "10 ", "0x10", "99999999999999999999"])("refuses limit=%j with 400", async (limit) => {
		const response = await admin(`${LIST}?limit=${encodeURIComponent(limit)}`);
		await expectError(response, 400, /limit/);
	});

	it("refuses a limit given twice", async () => {
		await expectError(await admin(`${LIST}?limit=10&limit=20`), 400, /limit/);
	});

	it("answers a cursor it did not issue with a list or a 400, never a 5xx", async () => {
		// Local KV accepts any cursor; production KV rejects foreign ones (the route's 400).
		for (const cursor of ["not-a-cursor", "AAAA", "%%%"]) {
			const response = await admin(`${LIST}?cursor=${encodeURIComponent(cursor)}`);
			expect([200, 400], cursor).toContain(response.status);
			const result = await read<Outcome & Partial<ListPage>>(response);
			if (response.status === 400) expect(result.error).toMatch(/cursor/);
			else expect(Array.isArray(result.pieces)).toBe(true);
		}
	});

	it("filters by space, exactly", async () => {
		const a = newSpace();
		const b = newSpace();
		// A space whose DID extends `a`'s: must not show up under `a`.
		const longer = `${a}Q`;
		const aIds = [newPieceId(), newPieceId()];
		for (const pieceId of aIds) await seedPiece({ space: a, pieceId });
		const bEntry = await seedPiece({ space: b });
		const longerEntry = await seedPiece({ space: longer });

		const onlyA = await list(`space=${encodeURIComponent(a)}`);
		expect(onlyA.pieces.map((piece) => piece.pieceId).sort()).toEqual([...aIds].sort());
		expect(onlyA.pieces.every((piece) => piece.space === a)).toBe(true);
		expect(onlyA.complete).toBe(true);

		const onlyB = await list(`space=${b}`);
		expect(onlyB.pieces.map((piece) => [piece.space, piece.pieceId])).toEqual([[b, bEntry.pieceId]]);
		const onlyLonger = await list(`space=${longer}`);
		expect(onlyLonger.pieces.map((piece) => piece.pieceId)).toEqual([longerEntry.pieceId]);
		expect((await list(`space=${newSpace()}`)).pieces).toEqual([]);
	});

	it("lists each piece's summary from the registry", async () => {
		const space = newSpace();
		const seeded = await seedPiece({ space, integration: "gmail", status: "Success", lastRun: 5_000, failures: 0, nextRunAt: 65_000 });
		const [piece] = (await list(`space=${space}`)).pieces;
		expect(piece).toMatchObject({
			space,
			pieceId: seeded.pieceId,
			integration: "gmail",
			status: "Success",
			createdAt: seeded.createdAt,
			updatedAt: seeded.updatedAt,
			disabledAt: 0,
			lastRun: 5_000,
			failures: 0,
			nextRunAt: 65_000,
			enabled: true,
			// A steady piece's runs write nothing: lastRun may be a heartbeat (60 min) and a period old.
			lastRunMaxLagMs: 61 * 60_000,
		});
	});

	it.each(["did:web:example.com", "nope", "did:key:z6Mk0000"])("refuses space=%s with 400", async (space) => {
		await expectError(await admin(`${LIST}?space=${encodeURIComponent(space)}`), 400, /space/);
	});
});

describe("PATCH /api/integrations/bg/:space/:pieceId", () => {
	it("disables with `Disabled via UI` and enables with `Initializing...`", async () => {
		const seeded = await seedPiece({ status: "Success", failures: 2, nextRunAt: T0 });
		const before = Date.now();

		const off = await patch(seeded.space, seeded.pieceId, JSON.stringify({ enabled: false }));
		expect(off.status).toBe(200);
		const offResult = await read<Outcome>(off);
		expect(offResult.success).toBe(true);
		expect(typeof offResult.message).toBe("string");
		expect(offResult.piece).toMatchObject({ status: "Disabled via UI", enabled: false });
		// Nothing runs while disabled, so lastRun is exact.
		expect((await read<{ lastRunMaxLagMs: number }>(await call(piecePath(seeded.space, seeded.pieceId)))).lastRunMaxLagMs).toBe(0);

		const disabled = await getEntry(seeded.space, seeded.pieceId);
		expect(disabled.status).toBe("Disabled via UI");
		expect(disabled.disabledAt).toBeGreaterThanOrEqual(before);
		expect(disabled.enabled).toBe(false);
		expect(disabled.createdAt).toBe(seeded.createdAt);
		// The list (KV metadata) agrees with the entry.
		const [listed] = (await list(`space=${seeded.space}`)).pieces;
		expect(listed).toMatchObject({ status: "Disabled via UI", disabledAt: disabled.disabledAt, enabled: false });

		const on = await patch(seeded.space, seeded.pieceId, JSON.stringify({ enabled: true }));
		expect(on.status).toBe(200);
		expect((await read<Outcome>(on)).piece).toMatchObject({ status: "Initializing...", enabled: true, disabledAt: 0 });
		const enabled = await getEntry(seeded.space, seeded.pieceId);
		expect(enabled).toMatchObject({ status: "Initializing...", disabledAt: 0, enabled: true, failures: 0 });
		// Due at the next tick again.
		expect(enabled.nextRunAt).toBe(0);
		const [relisted] = (await list(`space=${seeded.space}`)).pieces;
		expect(relisted).toMatchObject({ status: "Initializing...", disabledAt: 0, enabled: true });
	});

	it("keeps the first disabledAt when disabled twice", async () => {
		const seeded = await seedPiece();
		expect((await patch(seeded.space, seeded.pieceId, JSON.stringify({ enabled: false }))).status).toBe(200);
		const first = await getEntry(seeded.space, seeded.pieceId);
		await sleep(20);
		expect((await patch(seeded.space, seeded.pieceId, JSON.stringify({ enabled: false }))).status).toBe(200);
		const second = await getEntry(seeded.space, seeded.pieceId);
		expect(second.disabledAt).toBe(first.disabledAt);
		expect(second.status).toBe("Disabled via UI");
	});

	it("leaves an enabled piece as it is when enabled", async () => {
		const seeded = await seedPiece({ status: "Success", lastRun: 42_000 });
		const response = await patch(seeded.space, seeded.pieceId, JSON.stringify({ enabled: true }));
		expect(response.status).toBe(200);
		const entry = await getEntry(seeded.space, seeded.pieceId);
		expect(entry).toMatchObject({ status: "Success", lastRun: 42_000, updatedAt: seeded.updatedAt, disabledAt: 0 });
	});

	it("accepts the body as text/plain and with the of: spelling in the path", async () => {
		const legacy = newPieceId();
		const seeded = await seedPiece({ pieceId: legacy });
		const response = await patch(seeded.space, `of:${legacy}`, JSON.stringify({ enabled: false }), {});
		expect(response.status).toBe(200);
		expect((await getEntry(seeded.space, legacy)).status).toBe("Disabled via UI");
	});

	it.each([
		["an empty object", "{}"],
		["enabled as a string", JSON.stringify({ enabled: "false" })],
		["enabled as a number", JSON.stringify({ enabled: 0 })],
		["enabled as null", JSON.stringify({ enabled: null })],
		["an array", JSON.stringify([{ enabled: false }])],
		["a bare boolean", "false"],
		["invalid JSON", "{enabled: false}"],
		["an empty body", ""],
	])("refuses %s with 400 and changes nothing", async (_name, body) => {
		const seeded = await seedPiece();
		await expectError(await patch(seeded.space, seeded.pieceId, body), 400);
		const entry = await getEntry(seeded.space, seeded.pieceId);
		expect(entry).toMatchObject({ disabledAt: 0, status: seeded.status, updatedAt: seeded.updatedAt });
	});

	it("refuses a body over 64 KB with 413", async () => {
		const seeded = await seedPiece();
		const body = JSON.stringify({ enabled: false }) + " ".repeat(64 * 1024);
		await expectError(await patch(seeded.space, seeded.pieceId, body), 413);
		expect((await getEntry(seeded.space, seeded.pieceId)).disabledAt).toBe(0);
	});

	it("answers 404 for an unknown piece and 400 for a malformed one, storing nothing", async () => {
		const space = newSpace();
		const pieceId = newPieceId();
		await expectError(await patch(space, pieceId, JSON.stringify({ enabled: false })), 404);
		expect((await list(`space=${space}`)).pieces).toEqual([]);
		await expectError(await patch("did:key:bad", pieceId, JSON.stringify({ enabled: false })), 400);
		await expectError(await patch(space, "fid1:bad", JSON.stringify({ enabled: false })), 400);
	});
});

describe("DELETE /api/integrations/bg/:space/:pieceId", () => {
	it("removes the piece: then GET and a second DELETE answer 404", async () => {
		const space = newSpace();
		const seeded = await seedPiece({ space });
		const kept = await seedPiece({ space });

		const response = await admin(piecePath(space, seeded.pieceId), { method: "DELETE" });
		expect(response.status).toBe(200);
		const result = await read<Outcome>(response);
		expect(result.success).toBe(true);
		expect(typeof result.message).toBe("string");

		await expectError(await call(piecePath(space, seeded.pieceId)), 404);
		await expectError(await admin(piecePath(space, seeded.pieceId), { method: "DELETE" }), 404);
		await expectError(await admin(`${piecePath(space, seeded.pieceId)}/run`, { method: "POST" }), 404);
		await expectError(await patch(space, seeded.pieceId, JSON.stringify({ enabled: true })), 404);
		// Only that piece went.
		expect((await list(`space=${space}`)).pieces.map((piece) => piece.pieceId)).toEqual([kept.pieceId]);
		expect((await getEntry(space, kept.pieceId)).pieceId).toBe(kept.pieceId);
	});

	it("deletes a piece through either spelling", async () => {
		const legacy = newPieceId();
		const seeded = await seedPiece({ pieceId: legacy });
		expect((await admin(piecePath(seeded.space, `of:${legacy}`), { method: "DELETE" })).status).toBe(200);
		await expectError(await call(piecePath(seeded.space, legacy)), 404);
	});

	it("lets a deleted piece be registered afresh", async () => {
		const seeded = await seedPiece({ status: "Success", lastRun: 9_000 });
		expect((await admin(piecePath(seeded.space, seeded.pieceId), { method: "DELETE" })).status).toBe(200);
		expect((await registerPiece({ space: seeded.space, pieceId: seeded.pieceId, integration: "counter" })).status).toBe(200);
		const entry = await getEntry(seeded.space, seeded.pieceId);
		expect(entry.createdAt).toBeGreaterThan(seeded.createdAt);
		expect(["Initializing", "Success"]).toContain(entry.status);
	});

	it("answers 404 for an unknown piece and 400 for a malformed one", async () => {
		await expectError(await admin(piecePath(newSpace(), newPieceId()), { method: "DELETE" }), 404);
		await expectError(await admin(piecePath("did:key:bad", newPieceId()), { method: "DELETE" }), 400);
		await expectError(await admin(piecePath(newSpace(), "nope"), { method: "DELETE" }), 400);
	});
});

describe("POST /api/integrations/bg/:space/:pieceId/run", () => {
	it("answers 202 with a runId, and that run then succeeds", async () => {
		const seeded = await seedPiece();
		const before = Date.now();
		const response = await admin(`${piecePath(seeded.space, seeded.pieceId)}/run`, { method: "POST" });
		expect(response.status).toBe(202);
		const result = await read<Outcome>(response);
		expect(result.success).toBe(true);
		expect(typeof result.runId).toBe("string");
		expect(result.runId).not.toBe("");

		const entry = await eventually(async () => {
			const current = await getEntry(seeded.space, seeded.pieceId);
			return current.lastRunId === result.runId ? current : undefined;
		});
		expect(entry.status).toBe("Success");
		expect(entry.lastRun).toBeGreaterThanOrEqual(before);
		expect(entry.failures).toBe(0);
		expect(entry.disabledAt).toBe(0);
		expect(await runCount(seeded)).toBe(1);
		const [listed] = (await list(`space=${seeded.space}`)).pieces;
		expect(listed).toMatchObject({ status: "Success", lastRun: entry.lastRun });
	});

	it("gives each run-now its own runId", async () => {
		const seeded = await seedPiece();
		const path = `${piecePath(seeded.space, seeded.pieceId)}/run`;
		const first = await read<Outcome>(await admin(path, { method: "POST" }));
		const second = await read<Outcome>(await admin(path, { method: "POST" }));
		expect(first.runId).not.toBe(second.runId);
		await eventually(async () => ((await runCount(seeded)) === 2 ? true : undefined));
	});

	it("answers 409 for a disabled piece and runs nothing", async () => {
		const seeded = await seedPiece();
		expect((await patch(seeded.space, seeded.pieceId, JSON.stringify({ enabled: false }))).status).toBe(200);
		await expectError(await admin(`${piecePath(seeded.space, seeded.pieceId)}/run`, { method: "POST" }), 409, /disabled/);
		const entry = await getEntry(seeded.space, seeded.pieceId);
		expect(entry).toMatchObject({ status: "Disabled via UI", lastRunId: "" });
		expect(await runCount(seeded)).toBe(0);
	});

	it("answers 409 for a piece the scheduler disabled after failures", async () => {
		const seeded = await seedPiece({ disabledAt: 1_234, status: "Disabled: boom", failures: 3 });
		await expectError(await admin(`${piecePath(seeded.space, seeded.pieceId)}/run`, { method: "POST" }), 409);
	});

	it("answers 404 for an unknown piece and 400 for a malformed one", async () => {
		await expectError(await admin(`${piecePath(newSpace(), newPieceId())}/run`, { method: "POST" }), 404);
		await expectError(await admin(`${piecePath("did:key:bad", newPieceId())}/run`, { method: "POST" }), 400);
	});
});

describe("GET /api/health", () => {
	it("answers 200 with status, did, runtime and lastTick, without a token", async () => {
		const response = await call("/api/health");
		expect(response.status).toBe(200);
		const health = await read<Health>(response);
		expect(health.status).toBe("ok");
		expect(health.problems).toEqual([]);
		// The DID of OPERATOR_PASS (set for the tests), not the default passphrase's.
		expect(health.did).toBe(await didOfPassphrase("test operator pass"));
		expect(health.did).not.toBe(await didOfPassphrase("implicit trust"));
		expect(health.runtime).toEqual({ via: "service-binding", protocol: 1, timeoutMs: 300, state: "ok", since: null, reason: null });
		expect(health).toHaveProperty("lastTick");
	});

	it("counts the default passphrase as a problem deployed, and only notes it when asked on this machine (npm start)", async () => {
		const insecure = { ...env, OPERATOR_PASS: "", IDENTITY: "" };
		const remote = await health(new Request("https://bg.example.com/api/health"), insecure);
		expect(remote.status).toBe("degraded");
		expect(remote.problems).toEqual([expect.stringContaining('signing with the default passphrase "implicit trust"')]);
		const local = await health(new Request("http://127.0.0.1:8787/api/health"), insecure);
		expect(local).toMatchObject({ status: "ok", problems: [] });
		expect(local.notes).toEqual([expect.stringMatching(/default passphrase .* before deploying$/)]);
	});

	it("reports the last tick's summary", async () => {
		const summary: TickSummary = { scheduledTime: T0, listed: 3, due: 2, dispatched: 2, skipped: 1, failed: 0, listCalls: 1, sendCalls: 1, lanes: 1, handedOver: 0, ms: 12 };
		await putLastTick(env, summary);
		const health = await read<Health>(await call("/api/health"));
		expect(health.lastTick).toEqual(summary);
	});

	it("says degraded when the cron has not ticked for three minutes", async () => {
		const stale = Date.now() - 4 * 60_000;
		await putLastTick(env, { scheduledTime: stale, listed: 0, due: 0, dispatched: 0, skipped: 0, failed: 0, listCalls: 1, sendCalls: 0, lanes: 1, handedOver: 0, ms: 1 });
		const health = await read<Health>(await call("/api/health"));
		expect(health.status).toBe("degraded");
		expect(health.problems.join(" ")).toContain(`no tick since ${new Date(stale).toISOString()}`);
		await putLastTick(env, { scheduledTime: Date.now(), listed: 0, due: 0, dispatched: 0, skipped: 0, failed: 0, listCalls: 1, sendCalls: 0, lanes: 1, handedOver: 0, ms: 1 });
		expect((await read<Health>(await call("/api/health"))).status).toBe("ok");
	});

	it("answers with CORS headers", async () => {
		const response = await call("/api/health", { headers: { origin: "https://app.example.org" } });
		expect(response.headers.get("access-control-allow-origin")).not.toBeNull();
	});
});
