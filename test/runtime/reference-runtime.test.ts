import { base64urlnopad } from "@scure/base";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { identityFromPassphrase, type Identity } from "../../src/identity/ed25519";
import { HEADERS, PROTOCOL_VERSION, utf8, type RunRequestBody } from "../../src/runtime/protocol";
import { signedHeaders } from "../../src/runtime/sign";
import { T0, newPieceId, newSpace } from "../helpers";

const URL_ = new URL("https://runtime.internal/v1/run");

function body(overrides: Partial<RunRequestBody> = {}): RunRequestBody {
	return { space: newSpace(), pieceId: newPieceId(), integration: "counter", event: {}, runId: `manual:${Date.now()}:${crypto.randomUUID()}`, scheduledTime: T0, attempt: 1, ...overrides };
}

/** Sends a run request signed by `identity` at `signedAt`, with `tamper` applied to the bytes sent. */
async function send(identity: Identity, payload: RunRequestBody, options: { signedAt?: number; tamper?: (bytes: Uint8Array) => Uint8Array; headers?: Record<string, string> } = {}) {
	const bytes = utf8(JSON.stringify(payload));
	const headers = await signedHeaders(identity, "POST", URL_, bytes, options.signedAt ?? Date.now());
	const sent = options.tamper ? options.tamper(bytes) : bytes;
	const response = await env.RUNTIME!.fetch(URL_, { method: "POST", headers: { ...headers, ...options.headers }, body: sent });
	return { status: response.status, protocol: response.headers.get(HEADERS.version), json: await response.json<{ error?: string; ok?: boolean }>() };
}

describe("reference runtime: refuses anyone but the service, and replays", async () => {
	const service = await identityFromPassphrase(env.OPERATOR_PASS!);
	const stranger = await identityFromPassphrase("someone else");

	it("runs a request signed by the service, answering with the protocol header", async () => {
		const answer = await send(service, body());
		expect(answer).toMatchObject({ status: 200, protocol: PROTOCOL_VERSION, json: { ok: true, count: 1 } });
	});

	it("refuses an unsigned request", async () => {
		const response = await env.RUNTIME!.fetch(URL_, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body()) });
		expect(response.status).toBe(401);
		expect(await response.json()).toEqual({ error: "unsigned request" });
	});

	it("refuses a tampered body", async () => {
		const answer = await send(service, body(), { tamper: (bytes) => utf8(new TextDecoder().decode(bytes).replace('"counter"', '"fail"')) });
		expect(answer).toMatchObject({ status: 401, json: { error: "bad signature" } });
	});

	it("refuses a forged signature", async () => {
		const answer = await send(service, body(), { headers: { [HEADERS.signature]: base64urlnopad.encode(new Uint8Array(64)) } });
		expect(answer).toMatchObject({ status: 401, json: { error: "bad signature" } });
	});

	it("refuses a stale request", async () => {
		const answer = await send(service, body(), { signedAt: Date.now() - 10 * 60_000 });
		expect(answer).toMatchObject({ status: 401, json: { error: "stale or future timestamp" } });
	});

	it("refuses a signer that is not allowed, however well it signs", async () => {
		const answer = await send(stranger, body());
		expect(answer).toMatchObject({ status: 401, json: { error: "signer not allowed" } });
	});

	it("refuses a replayed request, and takes the next attempt of the same run", async () => {
		const payload = body();
		const bytes = utf8(JSON.stringify(payload));
		const headers = await signedHeaders(service, "POST", URL_, bytes, Date.now());
		const first = await env.RUNTIME!.fetch(URL_, { method: "POST", headers, body: bytes });
		const replay = await env.RUNTIME!.fetch(URL_, { method: "POST", headers, body: bytes });
		expect(first.status).toBe(200);
		expect(replay.status).toBe(401);
		expect(await replay.json()).toEqual({ error: "replayed runId" });
		expect((await send(service, { ...payload, attempt: 2 })).status).toBe(200);
	});
});

describe("reference runtime: behaves as Common Fabric's runner where that is a fact of the runner", async () => {
	const service = await identityFromPassphrase(env.OPERATOR_PASS!);

	it("answers an async updater only once its work is done (the runner waits until idle)", async () => {
		const started = Date.now();
		const answer = await send(service, body({ integration: "async" }));
		// ASYNC_PIECE_MS is 200 in the tests: the handler returned at once, its work took 200 ms.
		expect(answer).toMatchObject({ status: 200, json: { ok: true } });
		expect(Date.now() - started).toBeGreaterThanOrEqual(195);
		expect((answer.json as { waitedForIdleMs?: number }).waitedForIdleMs).toBeGreaterThanOrEqual(195);
	});

	it("runs one piece at a time per space: a run for a busy space is busy, never the piece's failure", async () => {
		const space = newSpace();
		const first = send(service, body({ space, integration: "async" }));
		await new Promise((resolve) => setTimeout(resolve, 50));
		const sameSpace = await send(service, body({ space, integration: "counter" }));
		expect(sameSpace).toMatchObject({ status: 409, json: { error: "busy" } });
		expect((sameSpace.json as { busy?: { runId: string } }).busy?.runId).toMatch(/^manual:/);
		const otherSpace = await send(service, body({ integration: "counter" }));
		expect(otherSpace).toMatchObject({ status: 200, json: { ok: true } });
		expect((await first).status).toBe(200);
		// The space is free again.
		expect(await send(service, body({ space, integration: "counter" }))).toMatchObject({ status: 200 });
	});

	it("says what the runner says of a piece without a bgUpdater", async () => {
		const payload = body({ integration: "missing" });
		expect(await send(service, payload)).toMatchObject({ status: 404, json: { error: `Error: No updater stream found for piece: ${payload.pieceId}` } });
	});
});
