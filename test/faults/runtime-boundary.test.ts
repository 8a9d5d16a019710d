import { reset } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { handleMessage } from "../../src/consumer";
import { oneOffMessage } from "../../src/messages";
import { PERIOD_MS } from "../../src/policy/schedule";
import type { PieceEntry } from "../../src/registry/entry";
import { getEntry, getRuntimeHealth } from "../../src/registry/store";
import type { RunMessage } from "../../src/schema";
import { T0, call, seedPiece } from "../helpers";
import { entries, tick as runTick, untilAborted } from "./rig";

/*
 * The runtime boundary: runtimes that hang, lie or die never disable or fake a piece, and a
 * piece that really hangs on a healthy runtime is still disabled. The runtimes below are
 * FAKES (Fetchers standing in for a runtime's HTTP behaviour, which the reference runtime
 * never shows); each honours the request's abort signal as a real connection does. The tests
 * run with RUNTIME_TIMEOUT_MS = 300, so a liveness probe waits at most 300 ms too.
 */

beforeEach(() => reset());

type Handler = (request: Request, init: RequestInit) => Response | Promise<Response>;

/** A FAKE runtime; `requests` counts what reached it (probes included). */
function fakeRuntime(handle: Handler): Fetcher & { requests: number; probes: number } {
	const runtime = {
		requests: 0,
		probes: 0,
		async fetch(url: string | URL, init: RequestInit = {}) {
			const request = new Request(url, init);
			const body = await request.clone().text();
			runtime.requests++;
			if (body.includes('"probe":true')) runtime.probes++;
			return handle(new Request(url, { ...init, body }), init);
		},
		connect() {
			throw new Error("not used");
		},
	};
	return runtime as unknown as Fetcher & { requests: number; probes: number };
}

const MARKED = { "bg-protocol": "1", "content-type": "application/json" };

/** A body stream that sends `first`, then one byte every `everyMs`, never ending, until cancelled. */
function stalled(first: string, everyMs = 0): ReadableStream<Uint8Array> {
	let sentFirst = false;
	return new ReadableStream({
		async pull(controller) {
			if (!sentFirst) {
				sentFirst = true;
				controller.enqueue(new TextEncoder().encode(first));
				return;
			}
			// No more bytes (everyMs 0: a stall), or one byte now and then (a drip), forever.
			await new Promise((resolve) => setTimeout(resolve, everyMs || 60_000));
			if (everyMs) controller.enqueue(new TextEncoder().encode(" "));
		},
	});
}

/** One tick against `runtime` (the reference runtime if none). */
function tick(time: number, runtime?: Fetcher): Promise<RunMessage[]> {
	return runTick(time, { ...env, ...(runtime ? { RUNTIME: runtime } : {}) });
}


async function healthProblems(): Promise<string[]> {
	return (await (await call("/api/health")).json<{ problems: string[] }>()).problems;
}

/** Four ticks against `runtime` (three failures in a row would disable), then checks nothing counted. */
async function outageOf(runtime: Fetcher, statusText: RegExp): Promise<PieceEntry[]> {
	const pieces = await Promise.all(Array.from({ length: 6 }, () => seedPiece()));
	for (let k = 0; k < 4; k++) expect(await tick(T0 + k * PERIOD_MS, runtime)).toHaveLength(6);
	for (const entry of await entries(pieces)) {
		expect(entry).toMatchObject({ failures: 0, disabledAt: 0, lastRun: 0 });
		expect(entry.status).toMatch(/^Runtime unavailable since \d{4}-/);
		expect(entry.status).toMatch(statusText);
	}
	expect(await getRuntimeHealth(env)).toMatchObject({ state: "unavailable" });
	expect((await healthProblems()).some((p) => p.startsWith("the runtime has been unavailable since") && statusText.test(p))).toBe(true);
	// Back: every piece runs on the next tick, and health recovers.
	await tick(T0 + 4 * PERIOD_MS, undefined);
	for (const entry of await entries(pieces)) expect(entry).toMatchObject({ status: "Success", failures: 0, unavailableSince: 0 });
	expect(await getRuntimeHealth(env)).toMatchObject({ state: "ok" });
	expect(await healthProblems()).not.toContainEqual(expect.stringContaining("runtime has been unavailable"));
	return pieces;
}

describe("a runtime that is silent, lies or dies is unavailable: nothing counted, nothing disabled, the status says so", () => {
	it("hangs before answering (accepts the request, never answers)", async () => {
		const runtime = fakeRuntime((_, init) => untilAborted(init));
		await outageOf(runtime, /no answer within 300 ms, and no answer to a liveness probe/);
		expect(runtime.probes).toBeGreaterThan(0);
	});

	it("sends its headers, then stalls the body", async () => {
		await outageOf(fakeRuntime(() => new Response(stalled('{"ok":'), { status: 200, headers: MARKED })), /no answer within 300 ms/);
	});

	it("drips a byte at a time and never finishes", async () => {
		await outageOf(fakeRuntime(() => new Response(stalled('{"ok": true', 20), { status: 200, headers: MARKED })), /no answer within 300 ms/);
	});

	it("accepts no connection: no request ever reaches it", async () => {
		let reached = 0;
		// FAKE of a port whose accept queue is full: the connection never opens, nothing is received.
		const runtime = { fetch: (_: unknown, init: RequestInit) => untilAborted(init), connect: () => { throw new Error("not used"); } } as unknown as Fetcher;
		await outageOf(runtime, /no answer to a liveness probe/);
		expect(reached).toBe(0);
	});

	it("answers 200 without the protocol header (a health page, a catch-all app): never a success", async () => {
		await outageOf(fakeRuntime(() => Response.json({ ok: true, status: "healthy" })), /HTTP 200 without the bg-protocol header: that is not a piece runtime's answer/);
	});

	it("refuses every run as a replay (a broken replay store): said in the status and health within a tick", async () => {
		const runtime = fakeRuntime(() => Response.json({ error: "replayed runId" }, { status: 401, headers: MARKED }));
		await outageOf(runtime, /refused the run as already seen \(replayed runId\), and a fresh liveness probe too: its replay store is broken/);
	});
});

describe("a healthy runtime with one piece that hangs", () => {
	it("disables the hanging piece on its third timeout in a row, and only it", async () => {
		const healthy = await Promise.all(Array.from({ length: 5 }, () => seedPiece()));
		// The reference runtime's `slow` piece takes 1.5 s: past the 300 ms timeout, while the runtime answers probes.
		const hanging = await seedPiece({ integration: "slow" });
		for (let k = 0; k < 8; k++) await tick(T0 + k * PERIOD_MS, undefined);
		expect(await getEntry(env, hanging)).toMatchObject({ failures: 3, status: "Disabled: timed out after 300 ms", lastError: "timed out after 300 ms" });
		expect((await getEntry(env, hanging))!.disabledAt).toBeGreaterThan(0);
		for (const entry of await entries(healthy)) expect(entry).toMatchObject({ status: "Success", failures: 0, disabledAt: 0 });
		expect(await getRuntimeHealth(env)).toBeNull();
	});
});

describe("the runtime dies in the middle of a batch of long runs", () => {
	it("loses no run and disables nothing; every piece runs once it is back", async () => {
		const pieces = await Promise.all(Array.from({ length: 12 }, () => seedPiece()));
		let alive = true;
		const inFlight: (() => void)[] = [];
		// FAKE: each run takes 150 ms; after the fourth request the process dies, dropping the
		// connections it holds and refusing new ones.
		const runtime = fakeRuntime(async () => {
			if (!alive) throw new TypeError("Network connection lost.");
			if (runtime.requests === 4) setTimeout(() => ((alive = false), inFlight.splice(0).forEach((drop) => drop())), 50);
			await new Promise<void>((resolve, reject) => {
				inFlight.push(() => reject(new TypeError("Network connection lost.")));
				setTimeout(resolve, 150);
			});
			if (!alive) throw new TypeError("Network connection lost.");
			return Response.json({ ok: true }, { headers: MARKED });
		});
		await tick(T0, runtime);
		const after = await entries(pieces);
		for (const entry of after) expect(entry).toMatchObject({ failures: 0, disabledAt: 0 });
		expect(after.filter((e) => e.status.startsWith("Runtime unavailable since")).length).toBeGreaterThan(0);
		expect(after.filter((e) => e.status.includes("Network connection lost")).length).toBe(after.filter((e) => e.status.startsWith("Runtime unavailable")).length);
		// Back: every piece runs at the next tick (none lost), and the status says so.
		const sent = await tick(T0 + PERIOD_MS, undefined);
		expect(sent.length).toBeGreaterThanOrEqual(after.filter((e) => e.status !== "Success").length);
		for (const entry of await entries(pieces)) expect(entry).toMatchObject({ status: "Success", failures: 0, disabledAt: 0 });
	});
});

describe("overlapping runs of one piece are skipped (the runtime knows a run is still going)", () => {
	it("a run that arrives while the piece's last run is still going is skipped: nothing counted, in the history", async () => {
		const piece = await seedPiece({ integration: "slow" });
		const first = handleMessage(oneOffMessage("manual", piece, T0), 1, env);
		await new Promise((resolve) => setTimeout(resolve, 100));
		expect(await handleMessage(oneOffMessage("manual", piece, T0), 1, env)).toBe("ran");
		const skipped = (await getEntry(env, piece))!;
		expect(skipped).toMatchObject({ failures: 0, disabledAt: 0, status: "Initializing" });
		expect(skipped.history?.at(-1)).toMatchObject({ outcome: "skipped", error: expect.stringMatching(/^skipped: run manual:\d+:[0-9a-f-]+ is still going \(since \d{4}-/) });
		await first;
		// The first run outlasted its time on a live runtime: its failure is counted, once.
		expect(await getEntry(env, piece)).toMatchObject({ failures: 1, status: "timed out after 300 ms" });
	});

	it("a runtime that forgot the run (restarted) takes the next one: nothing stays blocked", async () => {
		const piece = await seedPiece({ integration: "slow" });
		await handleMessage(oneOffMessage("manual", piece, T0), 1, env);
		// The runtime's memory of the run ends with the scheduler's timeout (RUN_LIMIT_MS): the next run is taken.
		await new Promise((resolve) => setTimeout(resolve, 1_100));
		await handleMessage(oneOffMessage("manual", piece, T0), 1, env);
		const entry = (await getEntry(env, piece))!;
		expect(entry.history?.map((r) => r.outcome)).toEqual(["failure", "failure"]);
	});
});
