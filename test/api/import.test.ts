import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { EXTRA_FIELDS, UPSTREAM_FIELDS, exportRegistry, importRegistry, type Transport } from "../../cli/transfer";
import { tokenFingerprint } from "../../src/api/admin-tokens";
import type { Admin } from "../../src/api/auth";
import { type ImportAnswer, importRows } from "../../src/api/import";
import { openApiDocument } from "../../src/api/openapi";
import type { PieceEntry } from "../../src/registry/entry";
import { pieceKey } from "../../src/registry/keys";
import { admin, call, newLegacyPieceId, newPieceId, newSpace, seedPiece, T0 } from "../helpers";
import { fanOutTick, recordingQueue } from "../recording-queue";

beforeEach(() => reset());

const IMPORT = "/api/admin/import";
const DAY = 86_400_000;
const NOW = Date.now();

/** A row of the replaced service's registry array, as its system space holds it. */
function upstreamRow(overrides: Record<string, unknown> = {}): Record<string, unknown> {
	return {
		space: newSpace(),
		pieceId: newPieceId(),
		integration: "gmail",
		createdAt: NOW - 30 * DAY,
		updatedAt: NOW - 2 * DAY,
		disabledAt: 0,
		lastRun: NOW - 60_000,
		status: "Success",
		...overrides,
	};
}

function post(body: unknown, headers: Record<string, string> = {}): Promise<Response> {
	return admin(IMPORT, { method: "POST", headers: { "content-type": "application/json", ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
}

/** Imports rows through the Worker's exports, asserting 200. */
async function importing(rows: unknown[], dryRun?: boolean): Promise<ImportAnswer> {
	const response = await post(dryRun === undefined ? { rows } : { rows, dryRun });
	expect(response.status).toBe(200);
	return response.json<ImportAnswer>();
}

/** The stored value and metadata of a piece, straight from KV. */
async function stored(ref: { space: string; pieceId: string }) {
	const { value, metadata } = await env.REGISTRY.getWithMetadata<Record<string, unknown>>(pieceKey(ref), "text");
	return { value, metadata, entry: value === null ? null : (JSON.parse(value) as PieceEntry) };
}

/** The handler called directly, with the bindings a test chooses (as the router would call it, after requireAdmin). */
function direct(body: unknown, bindings: Partial<Env> = {}): Promise<ImportAnswer> {
	const request = new Request(`https://scheduler.test${IMPORT}`, { method: "POST", body: JSON.stringify(body) });
	const admin: Admin = { via: "token", fingerprint: "0123abcd" };
	return importRows(Object.assign(request, { route: IMPORT, params: {}, query: {}, admin }), { ...env, ...bindings });
}

/** The registry with its puts counted (and, if asked, refused for rate as KV refuses a hot key). */
function countingRegistry(options: { refusePuts?: boolean } = {}) {
	const counts = { puts: 0 };
	const registry = new Proxy(env.REGISTRY, {
		get(target, prop) {
			if (prop === "put") {
				return (...args: Parameters<KVNamespace["put"]>) => {
					counts.puts++;
					return options.refusePuts ? Promise.reject(new Error("KV PUT failed: 429 Too Many Requests")) : target.put(...args);
				};
			}
			const value = Reflect.get(target, prop);
			return typeof value === "function" ? value.bind(target) : value;
		},
	});
	return { registry, counts };
}

/** The answer's fields are those the OpenAPI document declares for it, and no others. */
function expectDocumented(answer: ImportAnswer) {
	const schemas = openApiDocument.components.schemas;
	expect(Object.keys(answer).sort()).toEqual([...schemas.ImportAnswer.required].sort());
	const result = schemas.ImportAnswer.properties.results.items;
	for (const item of answer.results) {
		for (const name of result.required) expect(item).toHaveProperty(name);
		for (const name of Object.keys(item)) expect(Object.keys(result.properties)).toContain(name);
		expect(result.properties.outcome.enum).toContain(item.outcome);
	}
}

describe("POST /api/admin/import", () => {
	it("creates entries as the replaced service kept them, and a second import finds them unchanged", async () => {
		const rows = [
			upstreamRow(),
			upstreamRow({ status: "Error: token expired", lastRun: NOW - 120_000 }),
			upstreamRow({ disabledAt: NOW - DAY, status: "Disabled via UI", lastRun: NOW - DAY }),
			upstreamRow({ disabledAt: undefined, status: "Initializing", lastRun: 0 }),
			upstreamRow({ disabledAt: null, status: "Re-initializing" }),
		];
		const first = await importing(rows);
		expect(first).toMatchObject({ success: true, dryRun: false, counts: { created: 5, updated: 0, unchanged: 0, refused: 0, retry: 0 } });
		expect(first.results.map((r) => [r.index, r.outcome])).toEqual(rows.map((_, i) => [i, "created"]));
		expectDocumented(first);

		for (const row of rows) {
			const { entry } = await stored(row as { space: string; pieceId: string });
			expect(entry).toMatchObject({
				space: row.space,
				pieceId: row.pieceId,
				integration: "gmail",
				createdAt: row.createdAt,
				updatedAt: row.updatedAt,
				disabledAt: (row.disabledAt as number | null | undefined) ?? 0,
				lastRun: row.lastRun,
				status: row.status,
				failures: 0,
				nextRunAt: 0,
				lastSuccessAt: row.status === "Success" ? row.lastRun : 0,
				lastRunId: "",
				lastError: "",
				lastDurationMs: 0,
				unavailableSince: 0,
			});
		}

		const before = await Promise.all(rows.map((row) => stored(row as { space: string; pieceId: string })));
		const again = await importing(rows);
		expect(again.counts).toEqual({ created: 0, updated: 0, unchanged: 5, refused: 0, retry: 0 });
		const after = await Promise.all(rows.map((row) => stored(row as { space: string; pieceId: string })));
		// Same value and metadata, byte for byte.
		expect(after).toEqual(before);
	});

	it("writes nothing at all the second time (KV puts counted)", async () => {
		const rows = Array.from({ length: 20 }, (_, i) => upstreamRow(i % 2 ? { disabledAt: NOW - DAY, status: "Disabled: Error: boom" } : {}));
		const first = countingRegistry();
		expect((await direct({ rows }, { REGISTRY: first.registry })).counts.created).toBe(20);
		expect(first.counts.puts).toBe(20);
		const second = countingRegistry();
		expect((await direct({ rows }, { REGISTRY: second.registry })).counts.unchanged).toBe(20);
		expect(second.counts.puts).toBe(0);
	});

	it("queues no run: imported enabled pieces are due at the next tick, disabled ones are never dispatched", async () => {
		const enabled = [upstreamRow(), upstreamRow({ disabledAt: undefined, status: "Initializing", lastRun: 0 })];
		const disabled = [upstreamRow({ disabledAt: NOW - DAY, status: "Disabled: Error: boom" }), upstreamRow({ disabledAt: NOW - 3 * DAY, status: "Disabled via UI" })];
		const runs = recordingQueue();
		const answer = await direct({ rows: [...enabled, ...disabled] }, { RUNS: runs as unknown as Queue });
		expect(answer.counts.created).toBe(4);
		expect(runs.sent).toHaveLength(0);

		const tick = recordingQueue();
		await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: tick as unknown as Queue }, T0);
		const sent = new Set(tick.sent.map((m) => `${m.space}/${m.pieceId}`));
		expect(sent).toEqual(new Set(enabled.map((r) => `${r.space}/${r.pieceId}`)));
		for (const row of disabled) expect((await stored(row as { space: string; pieceId: string })).entry?.disabledAt).toBe(row.disabledAt);
	});

	it("takes of:fid1:… and fid1:… as one piece", async () => {
		const row = upstreamRow();
		const uri = { ...row, pieceId: `of:${row.pieceId}` };
		const first = await importing([uri]);
		expect(first.results[0]).toMatchObject({ outcome: "created", pieceId: row.pieceId });
		expect((await importing([row])).results[0]).toMatchObject({ outcome: "unchanged" });
		const both = await importing([row, uri]);
		expect(both.results[1]).toMatchObject({ outcome: "refused", reason: expect.stringContaining("the same piece as row 0") });
		const listed = await (await admin(`/api/integrations/bg?space=${row.space}`)).json<{ pieces: unknown[] }>();
		expect(listed.pieces).toHaveLength(1);
	});

	it("refuses bad rows one by one with a reason, while the good ones go in", async () => {
		const good = () => upstreamRow();
		const rows: [unknown, RegExp | null][] = [
			[good(), null],
			[upstreamRow({ pieceId: `computed:${newPieceId()}` }), /pieceId is a kinded id \(computed:fid1:…\)/],
			[upstreamRow({ pieceId: newLegacyPieceId() }), /legacy CID/],
			[upstreamRow({ pieceId: `of:${newLegacyPieceId()}` }), /legacy CID/],
			[upstreamRow({ status: "Error: \uD800 broken" }), /status must be valid Unicode text \(it has a lone surrogate\)/],
			[upstreamRow({ integration: "gm\uDC00ail" }), /integration must be valid Unicode text/],
			[upstreamRow({ createdAt: Math.floor(NOW / 1000) }), /createdAt looks like seconds/],
			[upstreamRow({ lastRun: Math.floor(NOW / 1000) }), /lastRun looks like seconds/],
			[upstreamRow({ updatedAt: NOW + 2 * DAY }), /updatedAt lies more than a day in the future/],
			[upstreamRow({ disabledAt: 1_700_000_000 }), /disabledAt looks like seconds/],
			[upstreamRow({ createdAt: 1.5e12 + 0.5 }), /createdAt must be a whole number of milliseconds/],
			[upstreamRow({ lastRun: -1 }), /lastRun must not be negative/],
			[upstreamRow({ lastRun: "yesterday" }), /lastRun must be a number/],
			[upstreamRow({ failures: 7 }), /failures must be a whole number from 0 to 3/],
			[upstreamRow({ space: "did:web:example.com" }), /space must be a did:key/],
			[(({ status: _, ...rest }) => rest)(upstreamRow()), /^status is required$/],
			[(({ space: _, ...rest }) => rest)(upstreamRow()), /^space is required$/],
			[(({ createdAt: _, ...rest }) => rest)(upstreamRow()), /^createdAt is required$/],
			["not a row", /row must be a JSON object/],
			[null, /row must be a JSON object/],
			[[1, 2], /row must be a JSON object/],
			[good(), null],
		];
		const answer = await importing(rows.map(([row]) => row));
		expect(answer.counts).toEqual({ created: 2, updated: 0, unchanged: 0, refused: rows.length - 2, retry: 0 });
		rows.forEach(([row, reason], index) => {
			const result = answer.results[index]!;
			expect(result.index).toBe(index);
			if (reason === null) expect(result.outcome).toBe("created");
			else {
				expect(result.outcome, String(reason)).toBe("refused");
				expect(result.reason).toMatch(reason);
			}
			if (reason === null) expect(result).toMatchObject({ space: (row as { space: string }).space, pieceId: (row as { pieceId: string }).pieceId });
		});
		expectDocumented(answer);
		// Only the good rows were written.
		const listed = await (await admin("/api/integrations/bg?limit=1000")).json<{ pieces: unknown[] }>();
		expect(listed.pieces).toHaveLength(2);
	});

	it("dryRun decides every row as a real import would, and writes nothing", async () => {
		const existing = await seedPiece({ updatedAt: NOW - 5 * DAY, lastRun: NOW - 5 * DAY, status: "Error: old" });
		const rows = [upstreamRow(), upstreamRow(), upstreamRow({ space: existing.space, pieceId: existing.pieceId }), upstreamRow({ pieceId: "nope" })];
		const before = await stored(existing);
		const dry = await importing(rows, true);
		expect(dry).toMatchObject({ dryRun: true, counts: { created: 2, updated: 1, unchanged: 0, refused: 1, retry: 0 } });
		expect((await stored(rows[0] as { space: string; pieceId: string })).value).toBeNull();
		expect(await stored(existing)).toEqual(before);
		const real = await importing(rows, false);
		expect(real.results.map((r) => r.outcome)).toEqual(dry.results.map((r) => r.outcome));
	});

	it("keeps an entry the Worker holds that is newer than the row; an older one takes the row's fields and keeps its history", async () => {
		const history = [{ at: NOW - 10 * DAY, outcome: "success" as const, durationMs: 12 }];
		const newer = await seedPiece({ updatedAt: NOW - 1000, lastRun: NOW - 1000, status: "Success", integration: "google" });
		const older = await seedPiece({ createdAt: NOW - 60 * DAY, updatedAt: NOW - 10 * DAY, lastRun: NOW - 10 * DAY, lastRunId: "run-1", lastError: "Error: x", lastDurationMs: 12, history, failures: 2, status: "Error: x" });
		const answer = await importing([
			upstreamRow({ space: newer.space, pieceId: newer.pieceId, status: "Error: stale", disabledAt: NOW - DAY }),
			upstreamRow({ space: older.space, pieceId: older.pieceId, createdAt: NOW - 30 * DAY, disabledAt: NOW - DAY, status: "Disabled: Error: y", lastRun: NOW - DAY }),
		]);
		expect(answer.results[0]).toMatchObject({ outcome: "unchanged", reason: expect.stringContaining("newer") });
		expect(answer.results[1]).toMatchObject({ outcome: "updated" });
		expect((await stored(newer)).entry).toEqual(newer);
		expect((await stored(older)).entry).toMatchObject({
			createdAt: NOW - 60 * DAY,
			updatedAt: NOW - 2 * DAY,
			disabledAt: NOW - DAY,
			lastRun: NOW - DAY,
			status: "Disabled: Error: y",
			failures: 0,
			integration: "gmail",
			lastRunId: "run-1",
			lastError: "Error: x",
			lastDurationMs: 12,
			// Its runs, and the import beside them, by the test's admin token.
			history: [...history, { at: expect.any(Number), outcome: "admin", action: "import", by: `token:${await tokenFingerprint(env.ADMIN_TOKEN!)}` }],
		});
	});

	it("a piece new to a full space is refused (MAX_PIECES_PER_SPACE); known pieces there are still updated", async () => {
		const space = newSpace();
		const known = await seedPiece({ space, updatedAt: 2_000, lastRun: 0 });
		await seedPiece({ space });
		const answer = await direct({ rows: [upstreamRow({ space }), upstreamRow({ space }), upstreamRow({ space, pieceId: known.pieceId })] }, { MAX_PIECES_PER_SPACE: "3" });
		expect(answer.results.map((r) => r.outcome)).toEqual(["created", "refused", "updated"]);
		expect(answer.results[1]!.reason).toMatch(/already has 3 pieces.*MAX_PIECES_PER_SPACE/);
	});

	it("a write KV refuses for its one write per key per second answers that row retry", async () => {
		const { registry } = countingRegistry({ refusePuts: true });
		const answer = await direct({ rows: [upstreamRow(), upstreamRow()] }, { REGISTRY: registry });
		expect(answer.counts).toEqual({ created: 0, updated: 0, unchanged: 0, refused: 0, retry: 2 });
		expect(answer.results[0]).toMatchObject({ outcome: "retry", reason: expect.stringContaining("again") });
	});

	it("refuses a malformed body, more than 100 rows, a body over 1 MB, and anyone but an admin", async () => {
		const many = Array.from({ length: 101 }, () => upstreamRow());
		const cases: [Response, number, RegExp][] = [
			[await post({ rows: many }), 400, /at most 100 rows/],
			[await post({ rows: "x" }), 400, /rows must be an array/],
			[await post({ rows: [], dryRun: "yes" }), 400, /dryRun must be true or false/],
			[await post([upstreamRow()]), 400, /body must be a JSON object/],
			[await post("{nope"), 400, /not valid JSON/],
			[await post({ rows: [upstreamRow({ status: "x".repeat(1024 * 1024) })] }), 413, /at most 1048576 bytes/],
			[await call(IMPORT, { method: "POST", body: JSON.stringify({ rows: [upstreamRow()] }) }), 401, /admin token/],
			[await call(IMPORT, { method: "POST", headers: { authorization: "Bearer wrong" }, body: JSON.stringify({ rows: [upstreamRow()] }) }), 401, /admin token/],
		];
		for (const [response, status, error] of cases) {
			expect(response.status).toBe(status);
			expect(await response.json()).toMatchObject({ success: false, error: expect.stringMatching(error) });
		}
		// 100 rows is allowed; a status past 4,096 characters is clipped, not refused.
		const hundred = await importing(Array.from({ length: 100 }, (_, i) => upstreamRow(i === 0 ? { status: `Error: ${"é".repeat(5000)}` } : {})));
		expect(hundred.counts.created).toBe(100);
		const listed = await (await admin("/api/integrations/bg?limit=1000")).json<{ pieces: unknown[] }>();
		expect(listed.pieces).toHaveLength(100);
	});
});

describe("the CLI's import and export against the Worker", () => {
	const transport: Transport = (path, init) => admin(path, init);

	it("round-trips 1,200 entries: import, export, compare, import again and import the export: all unchanged", { timeout: 120_000 }, async () => {
		const spaces = Array.from({ length: 40 }, () => newSpace());
		const good: Record<string, unknown>[] = [];
		for (let i = 0; i < 1_200; i++) {
			const row = upstreamRow({ space: spaces[i % spaces.length], integration: i % 3 ? "gmail" : "plaid", createdAt: NOW - 40 * DAY + i, updatedAt: NOW - 20 * DAY + i, lastRun: i % 11 ? NOW - DAY + i : 0 });
			if (i % 10 === 0) Object.assign(row, { disabledAt: NOW - 2 * DAY + i, status: i % 20 ? "Disabled via UI" : "Disabled: Error: invalid_grant" });
			else if (i % 11 === 0) row.status = "Initializing";
			else if (i % 9 === 0) row.status = `Error: ${"stack line\n".repeat(60)}`; // longer than the list's 300 characters
			if (i % 7 === 0) delete row.disabledAt;
			if (i % 13 === 0) row.pieceId = `of:${row.pieceId as string}`;
			good.push(row);
		}
		const bad = [
			upstreamRow({ pieceId: `computed:${newPieceId()}` }),
			upstreamRow({ pieceId: newLegacyPieceId() }),
			upstreamRow({ createdAt: 1_700_000_000 }),
			upstreamRow({ status: "\uDFFF" }),
			{ space: spaces[0] },
		];
		// Two stale copies of pieces above, in the other spelling: merged away before sending.
		const stale = [0, 1].map((i) => ({ ...good[i], pieceId: String(good[i]!.pieceId).replace(/^(?:of:)?/, i === 0 ? "" : "of:"), updatedAt: NOW - 90 * DAY, lastRun: 0, status: "stale" }));
		const file = [...good.slice(0, 600), ...bad, ...stale, ...good.slice(600)];

		const first = await importRegistry(transport, file);
		expect(first.duplicatesMerged).toBe(2);
		expect(first.counts).toEqual({ created: 1_200, updated: 0, unchanged: 0, refused: bad.length, retry: 0 });
		expect(first.outcomes.filter((o) => o.outcome === "refused").map((o) => o.index)).toEqual([600, 601, 602, 603, 604]);

		const exported = await exportRegistry(transport);
		expect(exported).toHaveLength(1_200);
		expect(Object.keys(exported[0]!)).toEqual([...UPSTREAM_FIELDS, ...EXTRA_FIELDS]);
		const byPiece = new Map(exported.map((row) => [`${row.space}/${row.pieceId}`, row]));
		for (const row of good) {
			const pieceId = String(row.pieceId).replace(/^of:/, "");
			expect(byPiece.get(`${row.space}/${pieceId}`)).toEqual({
				space: row.space,
				pieceId,
				integration: row.integration,
				createdAt: row.createdAt,
				updatedAt: row.updatedAt,
				disabledAt: row.disabledAt ?? 0,
				lastRun: row.lastRun,
				status: row.status,
				failures: 0,
				nextRunAt: 0,
				lastFailureAt: 0,
				lastSuccessAt: row.status === "Success" ? row.lastRun : 0,
			});
		}

		const second = await importRegistry(transport, file);
		expect(second.counts).toEqual({ created: 0, updated: 0, unchanged: 1_200, refused: bad.length, retry: 0 });
		const third = await importRegistry(transport, exported);
		expect(third.counts).toEqual({ created: 0, updated: 0, unchanged: 1_200, refused: 0, retry: 0 });
		expect(await exportRegistry(transport)).toEqual(exported);
	});
});
