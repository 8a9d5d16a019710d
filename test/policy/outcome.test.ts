import { describe, expect, it } from "vitest";
import { MAX_ERROR_LENGTH, REPLAY_REFUSED, afterReplay, afterSilence, classifyResponse, probeVerdict, resolveAnswer, unreachable } from "../../src/policy/outcome";

const V1 = "1";
const json = (value: unknown) => JSON.stringify(value);

describe("classifyResponse: only the protocol's answers count", () => {
	it("a 2xx with the header and ok: true is a success", () => {
		for (const status of [200, 201, 202, 204, 299]) expect(classifyResponse(status, json({ ok: true, count: 3 }), V1)).toEqual({ kind: "ok" });
	});

	it("a 2xx without the header is a misconfigured URL, not a success", () => {
		for (const body of [json({ ok: true }), "<html>health page</html>", "", "OK"]) {
			const outcome = classifyResponse(200, body, null);
			expect(outcome.kind).toBe("unavailable");
			expect(outcome).toMatchObject({ reason: expect.stringContaining("without the bg-protocol header: that is not a piece runtime's answer") });
		}
	});

	it("a 2xx with the header but a body that is not the protocol's is unavailable", () => {
		for (const body of ["", "not json", "null", "[]", json({ ok: false }), json({ ok: "yes" }), json({ count: 1 })]) {
			expect(classifyResponse(200, body, V1).kind).toBe("unavailable");
		}
	});

	it("another protocol version is not our protocol's answer", () => {
		expect(classifyResponse(200, json({ ok: true }), "2")).toMatchObject({ kind: "unavailable", reason: expect.stringContaining("with bg-protocol: 2") });
	});

	it("a 4xx with the header and an error is the piece's failure, trimmed and clipped", () => {
		expect(classifyResponse(422, json({ error: "  boom \n" }), V1)).toEqual({ kind: "failed", error: "boom" });
		expect(classifyResponse(404, json({ error: "piece has no bgUpdater stream" }), V1)).toEqual({ kind: "failed", error: "piece has no bgUpdater stream", notFound: true });
		expect(classifyResponse(403, json({ error: "AuthorizationError" }), V1)).toEqual({ kind: "failed", error: "AuthorizationError" });
		const long = classifyResponse(400, json({ error: "e".repeat(MAX_ERROR_LENGTH * 2) }), V1);
		expect(long).toEqual({ kind: "failed", error: `${"e".repeat(MAX_ERROR_LENGTH - 1)}…` });
	});

	it("a 4xx without the header, or without an error, counts nothing against the piece", () => {
		for (const [status, body, version] of [
			[404, "<html>Not Found</html>", null],
			[422, json({ error: "boom" }), null],
			[404, "", V1],
			[400, json({ message: "no error field" }), V1],
			[400, json({ error: 42 }), V1],
			[400, json({ error: "   " }), V1],
			[400, "null", V1],
		] as const) {
			expect(classifyResponse(status, body, version).kind, `${status} ${body} ${version}`).toBe("unavailable");
		}
	});

	it("401 and 407 are the runtime refusing us, except its replay refusal", () => {
		expect(classifyResponse(401, json({ error: "replayed runId" }), V1)).toEqual({ kind: "replayed" });
		expect(classifyResponse(401, json({ error: "replayed runId" }), null).kind).toBe("unavailable");
		expect(classifyResponse(401, json({ error: "signer not allowed" }), V1)).toEqual({ kind: "unavailable", reason: "runtime refused the scheduler: HTTP 401: signer not allowed" });
		expect(classifyResponse(407, "", V1).kind).toBe("unavailable");
	});

	it("429, 5xx, 3xx and 1xx are unavailable whatever they carry", () => {
		for (const status of [100, 301, 302, 429, 500, 502, 503, 504]) {
			expect(classifyResponse(status, json({ error: "x", ok: true }), V1).kind).toBe("unavailable");
			expect(classifyResponse(status, "", null).kind).toBe("unavailable");
		}
		expect(classifyResponse(503, json({ error: "overloaded" }), V1)).toEqual({ kind: "unavailable", reason: "runtime answered HTTP 503: overloaded" });
	});

	it("409 with busy is the previous run still going; without busy it is a failure", () => {
		expect(classifyResponse(409, json({ error: "busy", busy: { runId: "tick:1:a/b", since: 5 } }), V1)).toEqual({ kind: "busy", runningRunId: "tick:1:a/b", since: 5 });
		expect(classifyResponse(409, json({ busy: { runId: "r" } }), V1)).toEqual({ kind: "busy", runningRunId: "r", since: 0 });
		expect(classifyResponse(409, json({ busy: { runId: "r" } }), null).kind).toBe("unavailable");
		expect(classifyResponse(409, json({ error: "conflict" }), V1)).toEqual({ kind: "failed", error: "conflict" });
	});
});

describe("silence and the liveness probe", () => {
	it("silence from a runtime that answers its probe is the piece's failure", () => {
		expect(afterSilence(600_000, { alive: true })).toEqual({ kind: "failed", error: "timed out after 600000 ms" });
	});

	it("silence from a runtime that does not answer its probe is an outage, with the probe's reason", () => {
		expect(afterSilence(300, { alive: false, reason: "the probe got no answer within 300 ms" })).toEqual({
			kind: "unavailable",
			reason: "no answer within 300 ms, and no answer to a liveness probe: the probe got no answer within 300 ms",
		});
	});

	it("a probe shows a live runtime only by a protocol answer of success or the piece's failure", () => {
		expect(probeVerdict({ kind: "ok" })).toEqual({ alive: true });
		expect(probeVerdict({ kind: "failed", error: "Piece ID is not a valid entity id: bg-probe" })).toEqual({ alive: true });
		expect(probeVerdict({ kind: "busy", runningRunId: "r", since: 0 })).toEqual({ alive: true });
		expect(probeVerdict(classifyResponse(200, json({ ok: true }), null)).alive).toBe(false);
		expect(probeVerdict({ kind: "silent", timeoutMs: 300 })).toEqual({ alive: false, reason: "the probe got no answer within 300 ms" });
		expect(probeVerdict(unreachable("connection refused"))).toEqual({ alive: false, reason: "runtime unreachable: connection refused" });
		expect(probeVerdict({ kind: "replayed" }).alive).toBe(false);
	});

	it("a replay refusal is a duplicate if the runtime takes a fresh probe, else a broken replay store", () => {
		expect(afterReplay({ alive: true })).toEqual({ kind: "duplicate" });
		expect(afterReplay({ alive: false, reason: "the probe was refused as a replay too" })).toEqual({ kind: "unavailable", reason: REPLAY_REFUSED });
		expect(afterReplay({ alive: false, reason: "runtime answered HTTP 503" })).toEqual({ kind: "unavailable", reason: `${REPLAY_REFUSED} (the probe: runtime answered HTTP 503)` });
	});

	it("probes only for silence and replay refusals", async () => {
		let probes = 0;
		const probe = async () => (probes++, { alive: true as const });
		for (const answer of [{ kind: "ok" }, { kind: "failed", error: "x" }, { kind: "unavailable", reason: "y" }, { kind: "busy", runningRunId: "r", since: 1 }] as const) {
			expect(await resolveAnswer(answer, probe)).toEqual(answer);
		}
		expect(probes).toBe(0);
		expect(await resolveAnswer({ kind: "silent", timeoutMs: 5 }, probe)).toEqual({ kind: "failed", error: "timed out after 5 ms" });
		expect(await resolveAnswer({ kind: "replayed" }, probe)).toEqual({ kind: "duplicate" });
		expect(probes).toBe(2);
	});

	it("clips a long unreachable reason", () => {
		expect(unreachable("x".repeat(MAX_ERROR_LENGTH + 500))).toEqual({ kind: "unavailable", reason: `runtime unreachable: ${"x".repeat(MAX_ERROR_LENGTH - 1)}…` });
	});
});
