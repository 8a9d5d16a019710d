import { describe, expect, it } from "vitest";
import { admin, call, eventually, newLegacyPieceId, newPieceId, newSpace, piecePath, registerPiece, runCount } from "../helpers";
import { type Entry, type Outcome, getEntry, listAll, listSpace, read, sleep } from "./client";

const REGISTER = "/api/integrations/bg";
const ORIGIN = "https://app.example.org";
const LIMIT = 64 * 1024;

function fields(overrides: Record<string, unknown> = {}): Record<string, unknown> {
	return { space: newSpace(), pieceId: newPieceId(), integration: "counter", ...overrides };
}

/** POSTs a raw body to the registration route (no Content-Type unless given). */
function post(body: BodyInit | null | undefined, headers: Record<string, string> = {}): Promise<Response> {
	return call(REGISTER, { method: "POST", headers, body });
}

/** Asserts the registry holds nothing for this space (if a string) or this piece id. */
async function expectNothingStored(space: unknown, pieceId: unknown): Promise<void> {
	if (typeof space === "string" && /^did:key:z[1-9A-HJ-NP-Za-km-z]{40,120}$/.test(space)) {
		expect(await listSpace(space)).toEqual([]);
	}
	const bare = typeof pieceId === "string" ? pieceId.replace(/^of:/, "") : undefined;
	const leaked = (await listAll()).filter((piece) => piece.space === space || piece.pieceId === bare);
	expect(leaked).toEqual([]);
}

/** A valid registration body padded with JSON whitespace to exactly `bytes` bytes. */
function padded(body: Record<string, unknown>, bytes: number): string {
	const text = JSON.stringify(body);
	return text + " ".repeat(bytes - text.length);
}

/** A stream of `bytes` in 8 KB chunks, with no length known up front. */
function streamOf(text: string): ReadableStream<Uint8Array> {
	const bytes = new TextEncoder().encode(text);
	let offset = 0;
	return new ReadableStream<Uint8Array>({
		pull(controller) {
			if (offset >= bytes.length) {
				controller.close();
				return;
			}
			controller.enqueue(bytes.slice(offset, offset + 8192));
			offset += 8192;
		},
	});
}

describe("POST /api/integrations/bg: body styles", () => {
	it("accepts application/json and creates an Initializing entry that then runs", async () => {
		const body = fields();
		const before = Date.now();
		const response = await registerPiece(body as { space: string; pieceId: string; integration: string });
		expect(response.status).toBe(200);
		const result = await read<Outcome>(response);
		expect(result.success).toBe(true);
		expect(typeof result.message).toBe("string");
		expect(result.message).not.toBe("");
		expect(result.error).toBeUndefined();

		const entry = await getEntry(body.space as string, body.pieceId as string);
		expect(entry).toMatchObject({ space: body.space, pieceId: body.pieceId, integration: "counter", disabledAt: 0, enabled: true });
		expect(["Initializing", "Success"]).toContain(entry.status);
		expect(entry.createdAt).toBeGreaterThanOrEqual(before);
		expect(entry.createdAt).toBeLessThanOrEqual(Date.now());
		expect(entry.updatedAt).toBe(entry.createdAt);
		for (const key of ["lastRun", "failures", "nextRunAt"] as const) expect(typeof entry[key]).toBe("number");

		// It runs at once through the queue, without waiting for a tick.
		const ran = await eventually(async () => {
			const current = await getEntry(body.space as string, body.pieceId as string);
			return current.status === "Success" ? current : undefined;
		});
		expect(ran.lastRun).toBeGreaterThanOrEqual(entry.createdAt);
		expect(ran.lastRunId).toMatch(/^register:/);
		expect(ran.failures).toBe(0);
	});

	it("accepts the browser's body: no Content-Type, from another origin, with CORS headers", async () => {
		const body = fields();
		// A string body without a Content-Type header is sent as text/plain;charset=UTF-8.
		const request = new Request(`https://scheduler.test${REGISTER}`, { method: "POST", body: JSON.stringify(body), headers: { origin: ORIGIN } });
		expect(request.headers.get("content-type")).toBe("text/plain;charset=UTF-8");
		const response = await call(REGISTER, { method: "POST", body: JSON.stringify(body), headers: { origin: ORIGIN } });
		expect(response.status).toBe(200);
		expect(response.headers.get("access-control-allow-origin")).toMatch(/^(\*|https:\/\/app\.example\.org)$/);
		expect((await read<Outcome>(response)).success).toBe(true);
		const entry = await getEntry(body.space as string, body.pieceId as string);
		expect(entry.integration).toBe("counter");
	});

	it("accepts an explicit text/plain;charset=UTF-8 body and ignores unknown fields", async () => {
		const body = fields({ extra: { nested: true }, note: "ignored" });
		const response = await post(JSON.stringify(body), { "content-type": "text/plain;charset=UTF-8", origin: ORIGIN });
		expect(response.status).toBe(200);
		expect(response.headers.get("access-control-allow-origin")).not.toBeNull();
		expect((await read<Outcome>(response)).success).toBe(true);
		const entry = await getEntry(body.space as string, body.pieceId as string);
		expect(entry).not.toHaveProperty("extra");
		expect(entry).not.toHaveProperty("note");
	});

	it("answers errors with CORS headers too, so the component can read result.success", async () => {
		const response = await post("{not json", { origin: ORIGIN });
		expect(response.status).toBe(400);
		expect(response.headers.get("access-control-allow-origin")).not.toBeNull();
		expect((await read<Outcome>(response)).success).toBe(false);
	});

	it("answers the CORS preflight with 204 and the allowed methods and headers", async () => {
		const response = await call(REGISTER, {
			method: "OPTIONS",
			headers: { origin: ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "content-type, authorization" },
		});
		expect(response.status).toBe(204);
		expect(response.headers.get("access-control-allow-origin")).toMatch(/^(\*|https:\/\/app\.example\.org)$/);
		const methods = (response.headers.get("access-control-allow-methods") ?? "").toUpperCase();
		expect(methods).toContain("POST");
		const allowed = (response.headers.get("access-control-allow-headers") ?? "").toLowerCase();
		expect(allowed).toContain("content-type");
		expect(allowed).toContain("authorization");
		expect(await response.text()).toBe("");
	});

	it("answers the preflight of an admin route too", async () => {
		const response = await call(piecePath(newSpace(), newPieceId()), {
			method: "OPTIONS",
			headers: { origin: ORIGIN, "access-control-request-method": "PATCH", "access-control-request-headers": "content-type, authorization" },
		});
		expect(response.status).toBe(204);
		expect((response.headers.get("access-control-allow-methods") ?? "").toUpperCase()).toContain("PATCH");
	});
});

describe("POST /api/integrations/bg: upsert on (space, pieceId)", () => {
	it("keeps createdAt and moves updatedAt on re-registration", async () => {
		const body = fields() as { space: string; pieceId: string; integration: string };
		expect((await registerPiece(body)).status).toBe(200);
		const first = await getEntry(body.space, body.pieceId);
		await sleep(1_100);

		const again = await registerPiece(body);
		expect(again.status).toBe(200);
		const result = await read<Outcome>(again);
		expect(result.success).toBe(true);
		expect(typeof result.message).toBe("string");

		const second = await getEntry(body.space, body.pieceId);
		expect(second.createdAt).toBe(first.createdAt);
		expect(second.updatedAt).toBeGreaterThan(first.updatedAt);
		expect(second.updatedAt - first.updatedAt).toBeGreaterThanOrEqual(1_000);
		expect(second.disabledAt).toBe(0);
		// Re-initializing, unless the first registration's run finished after it.
		expect(["Re-initializing", "Success"]).toContain(second.status);
		expect(await listSpace(body.space)).toHaveLength(1);
	});

	it("takes a new integration name on re-registration, even at once", async () => {
		const body = fields() as { space: string; pieceId: string; integration: string };
		expect((await registerPiece(body)).status).toBe(200);
		expect((await registerPiece({ ...body, integration: "gmail" })).status).toBe(200);
		const entry = await getEntry(body.space, body.pieceId);
		expect(entry.integration).toBe("gmail");
		const listed = await listSpace(body.space);
		expect(listed).toHaveLength(1);
		expect(listed[0]?.integration).toBe("gmail");
	});

	it("re-enables a piece disabled via the admin API", async () => {
		const body = fields() as { space: string; pieceId: string; integration: string };
		expect((await registerPiece(body)).status).toBe(200);
		const created = await getEntry(body.space, body.pieceId);

		const patch = await admin(piecePath(body.space, body.pieceId), { method: "PATCH", body: JSON.stringify({ enabled: false }) });
		expect(patch.status).toBe(200);
		const disabled = await getEntry(body.space, body.pieceId);
		expect(disabled.disabledAt).toBeGreaterThan(0);
		expect(disabled.status).toBe("Disabled via UI");
		expect(disabled.enabled).toBe(false);

		const again = await registerPiece(body);
		expect(again.status).toBe(200);
		expect((await read<Outcome>(again)).success).toBe(true);
		const enabled = await getEntry(body.space, body.pieceId);
		expect(enabled.disabledAt).toBe(0);
		expect(enabled.enabled).toBe(true);
		expect(enabled.createdAt).toBe(created.createdAt);
		expect(enabled.updatedAt).toBeGreaterThanOrEqual(disabled.updatedAt);
		expect(["Re-initializing", "Success"]).toContain(enabled.status);
		expect(enabled.status).not.toMatch(/^Disabled/);

		// Re-enabling runs it again at once.
		await eventually(async () => {
			const current = await getEntry(body.space, body.pieceId);
			return current.status === "Success" && current.lastRun >= enabled.updatedAt ? current : undefined;
		});
		const listed = await listSpace(body.space);
		expect(listed).toHaveLength(1);
		expect(listed[0]?.disabledAt).toBe(0);
	});

	it("treats the of:fid1:… and fid1:… spellings as one piece", async () => {
		const space = newSpace();
		const legacy = newPieceId();

		const first = await registerPiece({ space, pieceId: `of:${legacy}`, integration: "counter" });
		expect(first.status).toBe(200);
		const second = await registerPiece({ space, pieceId: legacy, integration: "counter" });
		expect(second.status).toBe(200);
		const third = await registerPiece({ space, pieceId: `of:${legacy}`, integration: "gmail" });
		expect(third.status).toBe(200);

		const listed = await listSpace(space);
		expect(listed.map((piece) => piece.pieceId)).toEqual([legacy]);
		expect(listed[0]?.integration).toBe("gmail");
		// Both spellings find the same entry, stored without the URI prefix.
		const bare = await getEntry(space, legacy);
		const prefixed = await getEntry(space, `of:${legacy}`);
		expect(bare.pieceId).toBe(legacy);
		expect(prefixed.pieceId).toBe(legacy);
		expect(prefixed.createdAt).toBe(bare.createdAt);
	});

	it("keeps 10 concurrent identical registrations as one entry", async () => {
		const body = fields() as { space: string; pieceId: string; integration: string };
		const responses = await Promise.all(Array.from({ length: 10 }, () => registerPiece(body)));
		for (const response of responses) {
			expect(response.status).toBe(200);
			expect((await read<Outcome>(response)).success).toBe(true);
		}
		const listed = await listSpace(body.space);
		expect(listed).toHaveLength(1);
		expect(listed[0]).toMatchObject({ space: body.space, pieceId: body.pieceId, integration: "counter", disabledAt: 0 });
		// Still one once the runs the registrations queued have finished.
		await eventually(async () => ((await getEntry(body.space, body.pieceId)).status === "Success" ? true : undefined));
		expect(await listSpace(body.space)).toHaveLength(1);
		// …and the ten registrations' runs ran the piece once for this minute.
		await new Promise((resolve) => setTimeout(resolve, 2_500));
		expect(await runCount(body)).toBe(1);
	});

	it("keeps concurrent registrations in both spellings as one entry", async () => {
		const space = newSpace();
		const legacy = newPieceId();
		const responses = await Promise.all(
			Array.from({ length: 10 }, (_, i) => registerPiece({ space, pieceId: i % 2 ? legacy : `of:${legacy}`, integration: "counter" })),
		);
		for (const response of responses) expect(response.status).toBe(200);
		const listed = await listSpace(space);
		expect(listed.map((piece) => piece.pieceId)).toEqual([legacy]);
	});

	it("stores two pieces of one space, and one piece id in two spaces, apart", async () => {
		const space = newSpace();
		const other = newSpace();
		const a = newPieceId();
		const b = newPieceId();
		for (const body of [
			{ space, pieceId: a, integration: "counter" },
			{ space, pieceId: b, integration: "counter" },
			{ space: other, pieceId: a, integration: "gmail" },
		]) {
			expect((await registerPiece(body)).status).toBe(200);
		}
		expect((await listSpace(space)).map((piece) => piece.pieceId).sort()).toEqual([a, b].sort());
		const elsewhere = await listSpace(other);
		expect(elsewhere.map((piece) => [piece.pieceId, piece.integration])).toEqual([[a, "gmail"]]);
	});

	it("accepts an integration name of exactly 64 characters", async () => {
		const body = fields({ integration: "i".repeat(64) });
		const response = await post(JSON.stringify(body), { "content-type": "application/json" });
		expect(response.status).toBe(200);
		expect((await getEntry(body.space as string, body.pieceId as string)).integration).toBe("i".repeat(64));
	});

	it("accepts a body of exactly 64 KB, streamed or not", async () => {
		const body = fields();
		const response = await post(padded(body, LIMIT));
		expect(response.status).toBe(200);
		expect(await listSpace(body.space as string)).toHaveLength(1);

		const streamed = fields();
		const streamedResponse = await post(streamOf(padded(streamed, LIMIT)));
		expect(streamedResponse.status).toBe(200);
		expect(await listSpace(streamed.space as string)).toHaveLength(1);
	});
});

/** One invalid registration: its body, the status and what the error should mention. */
interface BadCase {
	name: string;
	body: () => { body: BodyInit | null | undefined; headers?: Record<string, string>; space: unknown; pieceId: unknown };
	status?: number;
	mentions?: RegExp;
}

/** A JSON body from fields, with the space and piece id it names for the stored check. */
function jsonCase(overrides: Record<string, unknown>, omit?: string): ReturnType<BadCase["body"]> {
	const body = fields(overrides);
	if (omit) delete body[omit];
	return { body: JSON.stringify(body), space: body.space, pieceId: body.pieceId };
}

/** A raw body naming a fresh valid pair (so a wrongly accepted one would be found). */
function rawCase(make: (valid: Record<string, unknown>) => BodyInit | null | undefined): ReturnType<BadCase["body"]> {
	const valid = fields();
	return { body: make(valid), space: valid.space, pieceId: valid.pieceId };
}

const utf8 = (text: string) => new TextEncoder().encode(text);
function withByte(text: string, marker: string, bytes: number[]): Uint8Array {
	const [before, after] = text.split(marker) as [string, string];
	return new Uint8Array([...utf8(before), ...bytes, ...utf8(after)]);
}

const badCases: BadCase[] = [
	// Missing fields.
	{ name: "missing space", body: () => jsonCase({}, "space"), mentions: /space/ },
	{ name: "missing pieceId", body: () => jsonCase({}, "pieceId"), mentions: /pieceId/ },
	{ name: "missing integration", body: () => jsonCase({}, "integration"), mentions: /integration/ },
	{ name: "empty object", body: () => ({ body: "{}", space: undefined, pieceId: undefined }) },
	// Wrong types.
	{ name: "space is a number", body: () => jsonCase({ space: 42 }), mentions: /space/ },
	{ name: "space is null", body: () => jsonCase({ space: null }), mentions: /space/ },
	{ name: "space is an array", body: () => jsonCase({ space: [newSpace()] }), mentions: /space/ },
	{ name: "pieceId is a number", body: () => jsonCase({ pieceId: 12345 }), mentions: /pieceId/ },
	{ name: "pieceId is an object", body: () => jsonCase({ pieceId: { id: newPieceId() } }), mentions: /pieceId/ },
	{ name: "integration is a number", body: () => jsonCase({ integration: 7 }), mentions: /integration/ },
	{ name: "integration is null", body: () => jsonCase({ integration: null }), mentions: /integration/ },
	{ name: "integration is a boolean", body: () => jsonCase({ integration: true }), mentions: /integration/ },
	// Bad space DIDs.
	{ name: "space is did:web", body: () => jsonCase({ space: "did:web:example.com" }), mentions: /space/ },
	{ name: "space has non-base58 characters", body: () => jsonCase({ space: `did:key:z6Mk${"0OIl".repeat(11)}` }), mentions: /space/ },
	{ name: "space is too short", body: () => jsonCase({ space: "did:key:z6MkhaXgBZD" }), mentions: /space/ },
	{ name: "space is empty", body: () => jsonCase({ space: "" }), mentions: /space/ },
	{ name: "space in upper case", body: () => jsonCase({ space: newSpace().replace("did:key:", "DID:KEY:") }), mentions: /space/ },
	{ name: "space with a trailing newline", body: () => jsonCase({ space: `${newSpace()}\n` }), mentions: /space/ },
	{ name: "space with a slash", body: () => jsonCase({ space: `${newSpace()}/x` }), mentions: /space/ },
	{ name: "space without a multibase prefix", body: () => jsonCase({ space: newSpace().replace("did:key:z", "did:key:") }), mentions: /space/ },
	// Bad piece ids.
	{ name: "pieceId is empty", body: () => jsonCase({ pieceId: "" }), mentions: /pieceId/ },
	{ name: "fid1 id one character short", body: () => jsonCase({ pieceId: newPieceId().slice(0, -1) }), mentions: /pieceId/ },
	{ name: "fid1 id one character long", body: () => jsonCase({ pieceId: `${newPieceId()}A` }), mentions: /pieceId/ },
	{ name: "fid1 id in padded base64", body: () => jsonCase({ pieceId: `${newPieceId().slice(0, -1)}=` }), mentions: /pieceId/ },
	{ name: "fid1 id with a plus", body: () => jsonCase({ pieceId: `${newPieceId().slice(0, -1)}+` }), mentions: /pieceId/ },
	{ name: "fid1 id with a slash", body: () => jsonCase({ pieceId: `${newPieceId().slice(0, -1)}/` }), mentions: /pieceId/ },
	{ name: "fid1 id with a trailing newline", body: () => jsonCase({ pieceId: `${newPieceId()}\n` }), mentions: /pieceId/ },
	{ name: "unknown id scheme fid2", body: () => jsonCase({ pieceId: newPieceId().replace("fid1:", "fid2:") }), mentions: /pieceId/ },
	{ name: "legacy id one character short", body: () => jsonCase({ pieceId: newLegacyPieceId().slice(0, -1) }), mentions: /pieceId/ },
	{ name: "legacy id in upper case", body: () => jsonCase({ pieceId: newLegacyPieceId().toUpperCase() }), mentions: /pieceId/ },
	{ name: "legacy id with a non-base32 digit", body: () => jsonCase({ pieceId: `${newLegacyPieceId().slice(0, -1)}1` }), mentions: /pieceId/ },
	{ name: "another CID (bafy…)", body: () => jsonCase({ pieceId: newLegacyPieceId().replace(/^baed/, "bafy") }), mentions: /pieceId/ },
	{ name: "of: prefix twice", body: () => jsonCase({ pieceId: `of:of:${newLegacyPieceId()}` }), mentions: /pieceId/ },
	// Bad integration names.
	{ name: "integration is empty", body: () => jsonCase({ integration: "" }), mentions: /integration/ },
	{ name: "integration is blank", body: () => jsonCase({ integration: "   " }), mentions: /integration/ },
	{ name: "integration is 65 characters", body: () => jsonCase({ integration: "i".repeat(65) }), mentions: /integration/ },
	{ name: "integration is 10,000 characters", body: () => jsonCase({ integration: "i".repeat(10_000) }), mentions: /integration/ },
	{ name: "integration with a NUL", body: () => jsonCase({ integration: "gm\u0000ail" }), mentions: /integration/ },
	{ name: "integration with a newline", body: () => jsonCase({ integration: "gm\nail" }), mentions: /integration/ },
	{ name: "integration with a zero-width space", body: () => jsonCase({ integration: "gm\u200bail" }), mentions: /integration/ },
	// Not JSON.
	{ name: "invalid JSON", body: () => rawCase((v) => JSON.stringify(v).slice(0, -1)), mentions: /JSON/ },
	{ name: "JSON with unquoted keys", body: () => rawCase((v) => `{space: "${v.space}", pieceId: "${v.pieceId}", integration: "counter"}`), mentions: /JSON/ },
	{ name: "JSON followed by junk", body: () => rawCase((v) => `${JSON.stringify(v)}x`), mentions: /JSON/ },
	{ name: "two JSON objects", body: () => rawCase((v) => `${JSON.stringify(v)}${JSON.stringify(v)}`), mentions: /JSON/ },
	{ name: "form encoding", body: () => rawCase((v) => new URLSearchParams(v as Record<string, string>).toString()) },
	// Empty bodies.
	{ name: "no body", body: () => ({ body: undefined, space: undefined, pieceId: undefined }) },
	{ name: "empty body", body: () => ({ body: "", space: undefined, pieceId: undefined }) },
	{ name: "whitespace body", body: () => ({ body: " \n\t ", space: undefined, pieceId: undefined }) },
	{ name: "empty JSON body", body: () => ({ body: "", headers: { "content-type": "application/json" }, space: undefined, pieceId: undefined }) },
	// Not UTF-8: a lenient decoder would turn these into U+FFFD and register the piece.
	{ name: "a 0xff byte in the integration", body: () => rawCase((v) => withByte(JSON.stringify({ ...v, integration: "gm@@ail" }), "@@", [0xff])), mentions: /UTF-8/ },
	{ name: "a truncated UTF-8 sequence", body: () => rawCase((v) => withByte(JSON.stringify({ ...v, integration: "gm@@ail" }), "@@", [0xe2, 0x82])), mentions: /UTF-8/ },
	{ name: "an overlong UTF-8 encoding", body: () => rawCase((v) => withByte(JSON.stringify({ ...v, integration: "gm@@ail" }), "@@", [0xc0, 0xaf])), mentions: /UTF-8/ },
	{ name: "a lone surrogate in UTF-8", body: () => rawCase((v) => withByte(JSON.stringify({ ...v, integration: "gm@@ail" }), "@@", [0xed, 0xa0, 0x80])), mentions: /UTF-8/ },
	{ name: "Latin-1 bytes", body: () => rawCase((v) => withByte(JSON.stringify({ ...v, integration: "caf@@" }), "@@", [0xe9])), mentions: /UTF-8/ },
	// Not an object.
	{ name: "an array of the fields", body: () => rawCase((v) => JSON.stringify([v])), mentions: /object/ },
	{ name: "an empty array", body: () => ({ body: "[]", space: undefined, pieceId: undefined }), mentions: /object/ },
	{ name: "null", body: () => ({ body: "null", space: undefined, pieceId: undefined }), mentions: /object/ },
	{ name: "a string", body: () => rawCase((v) => JSON.stringify(JSON.stringify(v))), mentions: /object/ },
	{ name: "a number", body: () => ({ body: "42", space: undefined, pieceId: undefined }), mentions: /object/ },
	{ name: "a boolean", body: () => ({ body: "true", space: undefined, pieceId: undefined }), mentions: /object/ },
	// Too large: valid registrations padded past 64 KB, so ignoring the limit would store them.
	{ name: "65,537 bytes", body: () => rawCase((v) => padded(v, LIMIT + 1)), status: 413, mentions: /too large/ },
	{ name: "1 MB", body: () => rawCase((v) => padded(v, 1024 * 1024)), status: 413 },
	{
		name: "65,537 bytes with a Content-Length header",
		body: () => rawCase((v) => padded(v, LIMIT + 1)),
		status: 413,
	},
	{ name: "65,537 bytes streamed without a length", body: () => rawCase((v) => streamOf(padded(v, LIMIT + 1))), status: 413 },
	{ name: "1 MB streamed without a length", body: () => rawCase((v) => streamOf(padded(v, 1024 * 1024))), status: 413 },
];

describe("POST /api/integrations/bg: invalid input is refused and stores nothing", () => {
	it.each(badCases)("$name", async ({ name, body: make, status = 400, mentions }) => {
		const { body, headers = {}, space, pieceId } = make();
		if (name.includes("Content-Length")) headers["content-length"] = String(LIMIT + 1);
		const response = await post(body, { origin: ORIGIN, ...headers });
		expect(response.status).toBe(status);
		expect(response.headers.get("access-control-allow-origin")).not.toBeNull();
		const result = await read<Outcome>(response);
		expect(result.success).toBe(false);
		expect(typeof result.error).toBe("string");
		expect(result.error?.length).toBeGreaterThan(0);
		expect(result.message).toBeUndefined();
		if (mentions) expect(result.error).toMatch(mentions);
		await expectNothingStored(space, pieceId);
	});

	it("refuses a declared Content-Length over 64 KB without reading the body", async () => {
		const valid = fields();
		let pulled = 0;
		// One byte, then nothing: a server that waits for the body would hang here.
		const stalled = new ReadableStream<Uint8Array>({
			pull(controller) {
				pulled++;
				if (pulled === 1) controller.enqueue(utf8("{"));
				return new Promise(() => {});
			},
		});
		const response = await Promise.race([
			post(stalled, { "content-length": String(1024 * 1024) }),
			sleep(5_000).then(() => new Response("timed out", { status: 599 })),
		]);
		expect(response.status).toBe(413);
		const result = await read<Outcome>(response);
		expect(result.success).toBe(false);
		expect(result.error).toMatch(/too large/);
		await expectNothingStored(valid.space, valid.pieceId);
	});

	it("rejects the whole registration when only one field is bad", async () => {
		const space = newSpace();
		const pieceId = newPieceId();
		const response = await post(JSON.stringify({ space, pieceId, integration: "" }));
		expect(response.status).toBe(400);
		expect(await listSpace(space)).toEqual([]);
		expect((await call(piecePath(space, pieceId))).status).toBe(404);
	});
});

describe("GET /api/integrations/bg/:space/:pieceId", () => {
	it("returns the whole entry", async () => {
		const body = fields() as { space: string; pieceId: string; integration: string };
		expect((await registerPiece(body)).status).toBe(200);
		const response = await call(piecePath(body.space, body.pieceId));
		expect(response.status).toBe(200);
		const entry = await read<Entry>(response);
		expect(entry).toMatchObject({ space: body.space, pieceId: body.pieceId, integration: "counter", disabledAt: 0, enabled: true });
		for (const key of ["createdAt", "updatedAt", "disabledAt", "lastRun", "failures", "nextRunAt", "lastDurationMs", "unavailableSince"] as const) {
			expect(typeof entry[key], key).toBe("number");
		}
		for (const key of ["status", "lastRunId", "lastError"] as const) expect(typeof entry[key], key).toBe("string");
		expect(entry.createdAt).toBeGreaterThan(0);
	});

	it("needs no admin token", async () => {
		const body = fields() as { space: string; pieceId: string; integration: string };
		expect((await registerPiece(body)).status).toBe(200);
		const response = await call(piecePath(body.space, body.pieceId), { headers: { authorization: "Bearer wrong" } });
		expect(response.status).toBe(200);
	});

	it("decodes percent-encoded path segments", async () => {
		const body = fields() as { space: string; pieceId: string; integration: string };
		expect((await registerPiece(body)).status).toBe(200);
		const response = await call(`${REGISTER}/${encodeURIComponent(body.space)}/${encodeURIComponent(body.pieceId)}`);
		expect(response.status).toBe(200);
		expect((await read<Entry>(response)).pieceId).toBe(body.pieceId);
	});

	it("answers 404 with an error for an unknown piece", async () => {
		const space = newSpace();
		const body = fields({ space }) as { space: string; pieceId: string; integration: string };
		expect((await registerPiece(body)).status).toBe(200);
		for (const path of [piecePath(space, newPieceId()), piecePath(newSpace(), body.pieceId), piecePath(space, `of:${newPieceId()}`)]) {
			const response = await call(path);
			expect(response.status, path).toBe(404);
			const result = await read<Outcome>(response);
			expect(result.success).toBe(false);
			expect(typeof result.error).toBe("string");
		}
	});

	it("answers 400 for a malformed space or piece id in the path", async () => {
		const space = newSpace();
		const pieceId = newPieceId();
		for (const path of [
			piecePath("did:key:nope", pieceId),
			piecePath("did:web:example.com", pieceId),
			piecePath(space, "fid1:short"),
			piecePath(space, "not-a-piece"),
			piecePath(space, `${newLegacyPieceId()}x`),
			piecePath(space, newLegacyPieceId()),
			piecePath(space, `computed:${pieceId}`),
			`${REGISTER}/${space}/${pieceId.slice(0, -1)}%E0%A4%A`,
			`${REGISTER}/%ZZ${space}/${pieceId}`,
		]) {
			const response = await call(path);
			expect(response.status, path).toBe(400);
			const result = await read<Outcome>(response);
			expect(result.success).toBe(false);
			expect(typeof result.error).toBe("string");
		}
	});
});

describe("unknown routes", () => {
	it("answer 404 JSON", async () => {
		for (const [method, path] of [
			["GET", "/"],
			["GET", "/api"],
			["GET", "/api/integrations"],
			["POST", "/api/integrations/bg/extra"],
			["PUT", REGISTER],
			["GET", `${piecePath(newSpace(), newPieceId())}/run`],
		] as const) {
			const response = await call(path, { method });
			expect(response.status, `${method} ${path}`).toBe(404);
			const result = await read<Outcome>(response);
			expect(result.success).toBe(false);
			expect(typeof result.error).toBe("string");
		}
	});
});
