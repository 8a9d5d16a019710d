import { describe, expect, it } from "vitest";
import { didFromPublicKey } from "../../src/identity/ed25519";
import { oneOffMessage, tickMessage } from "../../src/messages";
import { registered } from "../../src/policy/schedule";
import { MAX_INTEGRATION_LENGTH, firstIssue, registrationSchema, runMessageSchema } from "../../src/schema";
import { T0, newLegacyPieceId, newPieceId, newSpace } from "../helpers";

/** The message of the first issue, or null if the input is accepted. */
function problem(input: unknown): string | null {
	const result = registrationSchema.safeParse(input);
	return result.success ? null : firstIssue(result.error, input);
}

function valid() {
	return { space: newSpace(), pieceId: newPieceId(), integration: "gmail" };
}

describe("registrationSchema: accepts", () => {
	it("a did:key space, a fid1 id and an integration", () => {
		const body = valid();
		const result = registrationSchema.safeParse(body);
		expect(result.success).toBe(true);
		expect(result.data).toEqual(body);
	});

	it("a real Ed25519 space DID (did:key:z6Mk + 44 characters)", () => {
		const space = didFromPublicKey(new Uint8Array(32).fill(0xa5));
		expect(space).toMatch(/^did:key:z6Mk/);
		expect(space.slice("did:key:".length)).toHaveLength(48);
		expect(problem({ ...valid(), space })).toBeNull();
	});

	it("an of:fid1:… id (the URI spelling), normalised to the bare id", () => {
		const pieceId = newPieceId();
		const result = registrationSchema.safeParse({ ...valid(), pieceId: `of:${pieceId}` });
		expect(result.success).toBe(true);
		expect(result.data?.pieceId).toBe(pieceId);
	});

	it("a fid1 id with both base64url punctuation characters", () => {
		const pieceId = `fid1:${"-_".repeat(21)}A`;
		expect(pieceId.length).toBe(5 + 43);
		expect(problem({ ...valid(), pieceId })).toBeNull();
	});

	it("an integration with surrounding whitespace, trimmed", () => {
		const result = registrationSchema.safeParse({ ...valid(), integration: "  gmail \n" });
		expect(result.success).toBe(true);
		expect(result.data?.integration).toBe("gmail");
	});

	it(`an integration of exactly ${MAX_INTEGRATION_LENGTH} characters, and non-ASCII ones`, () => {
		expect(MAX_INTEGRATION_LENGTH).toBe(64);
		expect(problem({ ...valid(), integration: "i".repeat(64) })).toBeNull();
		expect(problem({ ...valid(), integration: "Gmail (Büro) — 仕事" })).toBeNull();
	});

	it("a body with unknown fields, dropping them", () => {
		const body = valid();
		const result = registrationSchema.safeParse({ ...body, extra: 1, success: true });
		expect(result.success).toBe(true);
		expect(result.data).toEqual(body);
	});
});

describe("registrationSchema: rejects, with a useful message", () => {
	it.each(["space", "pieceId", "integration"] as const)("a missing %s: `<field> is required`", (field) => {
		const body: Record<string, unknown> = valid();
		delete body[field];
		expect(problem(body)).toBe(`${field} is required`);
	});

	it.each([
		["space", 123, "space must be a string"],
		["pieceId", ["fid1:x"], "pieceId must be a string"],
		["integration", { name: "gmail" }, "integration must be a string"],
	] as const)("a wrong-typed %s, saying it must be a string", (field, value, message) => {
		expect(problem({ ...valid(), [field]: value })).toBe(message);
	});

	it.each([
		["space", 123],
		["pieceId", ["fid1:x"]],
		["integration", { name: "gmail" }],
		["space", null],
	] as const)("a wrong-typed %s (%j), naming the field", (field, value) => {
		const message = problem({ ...valid(), [field]: value });
		expect(message).not.toBeNull();
		expect(message).toContain(field);
	});

	it.each([
		["did:web", "did:web:example.com"],
		["did:key without the z multibase prefix", "did:key:6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"],
		["base58 0", "did:key:z6Mk0aXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"],
		["base58 O", "did:key:z6MkOaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"],
		["base58 I", "did:key:z6MkIaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"],
		["base58 l", "did:key:z6MklaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"],
		["too short", "did:key:z6Mk"],
		["a path separator", "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2do/"],
		["trailing garbage", "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK "],
		["empty", ""],
	])("a space that is %s", (_, space) => {
		expect(problem({ ...valid(), space })).toBe("space must be a did:key (did:key:z6Mk…)");
	});

	it.each([
		["42 characters", `fid1:${"A".repeat(42)}`],
		["44 characters", `fid1:${"A".repeat(44)}`],
		["a +", `fid1:${"A".repeat(42)}+`],
		["a /", `fid1:${"A".repeat(42)}/`],
		["padding", `fid1:${"A".repeat(42)}=`],
		["another prefix", `fid2:${"A".repeat(43)}`],
		["an uppercase legacy CID", `baed${"A".repeat(55)}`],
		["of: twice", `of:of:fid1:${"A".repeat(43)}`],
		["empty", ""],
	])("a pieceId with %s", (_, pieceId) => {
		expect(problem({ ...valid(), pieceId })).toMatch(/^pieceId must be a piece id/);
	});

	it.each([
		["computed", `computed:fid1:${"A".repeat(43)}`],
		["data", `data:fid1:${"B".repeat(43)}`],
	])("a kinded id (%s:fid1:…) is refused by name", (kind, pieceId) => {
		expect(problem({ ...valid(), pieceId })).toBe(`pieceId is a kinded id (${kind}:fid1:…), which names a value, not a piece: register the piece's own id (fid1:… or of:fid1:…)`);
	});

	it("a legacy baed… CID, in either spelling, is refused: the runner no longer runs it", () => {
		const legacy = newLegacyPieceId();
		expect(legacy).toMatch(/^baed[a-z2-7]{55}$/);
		for (const pieceId of [legacy, `of:${legacy}`, `baed${"a".repeat(54)}`, `baed${"a".repeat(56)}`]) expect(problem({ ...valid(), pieceId })).toMatch(/^pieceId is a legacy CID \(baed…\), which Common Fabric's runner no longer runs/);
	});

	it.each([
		["empty", "", "integration must not be empty"],
		["whitespace", " \t\n ", "integration must not be empty"],
		["65 characters", "i".repeat(65), "integration must be at most 64 characters"],
		["a NUL", "gm\u0000ail", "integration must not contain control characters"],
		["a tab inside", "gm\tail", "integration must not contain control characters"],
		["a DEL", "gmail\u007f", "integration must not contain control characters"],
		["a zero-width joiner", "gm\u200dail", "integration must not contain control characters"],
		["a line separator", "gm\u2028ail", "integration must not contain control characters"],
		["a right-to-left override", "\u202egmail", "integration must not contain control characters"],
		["a lone high surrogate", "gmail\ud83d", "integration must be valid Unicode text (it has a lone surrogate)"],
		["a lone low surrogate", "\ude00gmail", "integration must be valid Unicode text (it has a lone surrogate)"],
	])("an integration that is %s", (_, integration, message) => {
		expect(problem({ ...valid(), integration })).toBe(message);
	});

	it("an integration with an emoji (a surrogate pair, well formed) is accepted, and round-trips through JSON", () => {
		const parsed = registrationSchema.safeParse(JSON.parse(JSON.stringify({ ...valid(), integration: "gmail 😀" })));
		expect(parsed.success && parsed.data.integration).toBe("gmail 😀");
	});

	it.each([
		["an array", [valid()]],
		["a string", JSON.stringify(valid())],
		["null", null],
		["a number", 42],
		["undefined", undefined],
	])("a body that is %s", (_, body) => {
		expect(problem(body)).toBe("body must be a JSON object");
	});
});

describe("firstIssue", () => {
	it("answers something even for an error without issues", () => {
		expect(firstIssue({ issues: [] })).toBe("invalid input");
	});
});

describe("runMessageSchema", () => {
	const piece = registered(null, { space: newSpace(), pieceId: newPieceId(), integration: "counter" }, 1_000);

	it("accepts a tick message", () => {
		const message = tickMessage(piece, T0);
		const result = runMessageSchema.safeParse(message);
		expect(result.success).toBe(true);
		expect(result.data).toEqual(message);
	});

	it.each(["register", "manual"] as const)("accepts a %s message", (kind) => {
		const message = oneOffMessage(kind, piece, T0 + 1_500);
		expect(message.kind).toBe(kind);
		expect(runMessageSchema.safeParse(message).success).toBe(true);
	});

	it("survives a JSON round trip (the queue's json content type)", () => {
		const message = tickMessage(piece, T0);
		expect(runMessageSchema.parse(JSON.parse(JSON.stringify(message)))).toEqual(message);
	});

	it("normalises an of:fid1: piece id", () => {
		const id = newPieceId();
		const message = tickMessage({ ...piece, pieceId: `of:${id}` }, T0);
		expect(runMessageSchema.parse(message).pieceId).toBe(id);
	});

	it.each(["v", "kind", "space", "pieceId", "integration", "runId", "scheduledTime"])("rejects a message without %s", (field) => {
		const message: Record<string, unknown> = { ...tickMessage(piece, T0) };
		delete message[field];
		const result = runMessageSchema.safeParse(message);
		expect(result.success).toBe(false);
		if (result.success) return;
		expect(result.error.issues[0]?.path).toEqual([field]);
	});

	it.each([
		["v: 2", { v: 2 }],
		["v: \"1\"", { v: "1" }],
		["an unknown kind", { kind: "cron" }],
		["an empty runId", { runId: "" }],
		["a 301-character runId", { runId: "r".repeat(301) }],
		["a fractional scheduledTime", { scheduledTime: T0 + 0.5 }],
		["a negative scheduledTime", { scheduledTime: -1 }],
		["a string scheduledTime", { scheduledTime: String(T0) }],
		["a bad space", { space: "did:web:example.com" }],
	])("rejects a message with %s", (_, change) => {
		expect(runMessageSchema.safeParse({ ...tickMessage(piece, T0), ...change }).success).toBe(false);
	});

	it.each([null, [], "tick", 1])("rejects a non-object message %j", (body) => {
		expect(runMessageSchema.safeParse(body).success).toBe(false);
	});
});
