import { describe, expect, it } from "vitest";
import { MAX_RETRY_AFTER_SECONDS, classifyDispatch, retrySeconds } from "../../src/policy/acks";

const V2 = "2";
const ids = ["a", "b", "c", "d", "e"];
const acks = (runs: unknown[]) => JSON.stringify({ runs });

describe("classifyDispatch: a protocol 2 acknowledgement, run by run", () => {
	it("maps each ack to its outcome; a run left out was not taken", () => {
		const verdict = classifyDispatch(
			200,
			acks([
				{ runId: "a", status: "accepted" },
				{ runId: "b", status: "busy", busy: { runId: "a0", since: 7 } },
				{ runId: "c", status: "failed", error: " no bgUpdater " },
				{ runId: "d", status: "refused", error: "replayed runId" },
				{ runId: "zz", status: "accepted" },
			]),
			V2,
			null,
			ids,
		);
		if (verdict.kind !== "acked") throw new Error(verdict.kind);
		expect(Object.fromEntries(verdict.outcomes)).toEqual({
			a: { kind: "accepted" },
			b: { kind: "busy", runningRunId: "a0", since: 7 },
			c: { kind: "failed", error: "no bgUpdater" },
			d: { kind: "replayed" },
			e: { kind: "unavailable", reason: "the runtime's answer did not acknowledge this run" },
		});
	});

	it("an ack that does not parse counts nothing against its piece", () => {
		const verdict = classifyDispatch(200, acks([{ runId: "a", status: "failed" }, { runId: "b", status: "done" }, { runId: "c", status: "busy" }, { runId: "d", status: "refused", error: "nope" }]), V2, null, ids.slice(0, 4));
		if (verdict.kind !== "acked") throw new Error(verdict.kind);
		expect([...verdict.outcomes.values()].map((o) => o.kind)).toEqual(["unavailable", "unavailable", "unavailable", "unavailable"]);
	});

	it("the whole dispatch is unavailable for overload, refusal, another protocol or anything not its answer", () => {
		const cases: [number, string, string | null, RegExp][] = [
			[429, "{}", V2, /HTTP 429/],
			[503, JSON.stringify({ error: "down" }), V2, /HTTP 503: down/],
			[401, JSON.stringify({ error: "signer not allowed" }), V2, /refused the scheduler: HTTP 401: signer not allowed/],
			[401, JSON.stringify({ error: "body lacks space" }), "1", /speaks only version 1/],
			[200, acks([]), null, /without the bg-protocol header/],
			[200, "<html>", V2, /without a runs list/],
			[400, JSON.stringify({ error: "bad" }), V2, /refused the dispatch: HTTP 400: bad/],
		];
		for (const [status, body, version, reason] of cases) {
			const verdict = classifyDispatch(status, body, version, null, ids);
			expect(verdict.kind, `${status} ${body}`).toBe("unavailable");
			if (verdict.kind === "unavailable") expect(verdict.outcome.reason).toMatch(reason);
		}
	});

	it("Retry-After in seconds is kept (capped); dates and junk are not", () => {
		const verdict = classifyDispatch(429, "", V2, "7", ids);
		expect(verdict).toMatchObject({ kind: "unavailable", retryAfterSeconds: 7 });
		expect(retrySeconds("100000")).toBe(MAX_RETRY_AFTER_SECONDS);
		expect(retrySeconds("Wed, 21 Oct 2015 07:28:00 GMT")).toBeNull();
		expect(retrySeconds(null)).toBeNull();
	});

	it("a whole dispatch refused as a replay is a replay of every run (probed), not an outage", () => {
		const verdict = classifyDispatch(401, JSON.stringify({ error: "replayed runId" }), V2, null, ["a", "b"]);
		if (verdict.kind !== "acked") throw new Error(verdict.kind);
		expect([...verdict.outcomes.values()]).toEqual([{ kind: "replayed" }, { kind: "replayed" }]);
	});
});
