/**
 * BENCHMARK HARNESS ONLY: the piece runtime `npm run bench` runs against. It does not verify
 * signatures (the bench measures the scheduler, not the runtime), and every run succeeds
 * after its drawn duration (bench/latency.ts; 0 without `--latency`). It speaks both
 * protocols, so the current design (protocol 2, as wrangler.toml ships) and the naive
 * baseline (protocol 1) meet the same runs:
 *   POST /v2/runs    a dispatch: 200 at once, `bg-protocol: 2`, every run accepted; each run
 *                    then ends after its duration and its report goes out, batched and
 *                    signed (bench/report-outbox.ts), to the dispatch's reportTo over the
 *                    SCHEDULER binding
 *   POST /v1/run     a run: answered after its duration with 200 {"ok":true}, `bg-protocol: 1`
 *   GET  /stats      what arrived and ran (below)
 *   POST /reset      forget everything counted so far
 *   GET  /arrivals   each piece's run arrivals (ms), with BENCH_RECORD_ARRIVALS set (the arrival rig)
 *   POST /fail?share=S   from now on the pieces in share S (0–1, by a hash of the piece) fail:
 *                    the bench's mixed population (failing after a success, as a flapping or
 *                    newly broken piece does)
 * It counts runs (not requests) per wall-clock second of their arrival, the drawn durations
 * of the runs it ran, and the most runs in flight at once.
 */
import { identityFromPassphrase, type Identity } from "../src/identity/ed25519";
import { HEADERS } from "../src/runtime/protocol";
import { PROTOCOL_V2, type DispatchBody, type RunAck } from "../src/runtime/protocol-v2";
import { fnv1a } from "../src/util/hash";
import { drawMs, parseLatency, quantile } from "./latency";
import { ReportOutbox } from "./report-outbox";

interface BenchRuntimeEnv {
	/** The bench Worker, for reports. */
	SCHEDULER: Fetcher;
	/** The passphrase of the key reports are signed with; the bench Worker's RUNTIME_SIGNERS names its DID. */
	RUNTIME_PASS: string;
	/** `MEDIAN:P99` in ms, or "" for instant runs. */
	BENCH_LATENCY: string;
	/** "1": keep every run's arrival time per piece (GET /arrivals). */
	BENCH_RECORD_ARRIVALS?: string;
}

function freshCounts() {
	return { runs: 0, failed: 0, requests: 0, probes: 0, first: 0, last: 0, perSecond: new Map<number, number>(), durations: [] as number[], inFlightMax: 0 };
}

let counts = freshCounts();
/** Per piece, when its runs arrived (ms): only with BENCH_RECORD_ARRIVALS. */
const arrivals = new Map<string, number[]>();
/** The share of pieces that fail (POST /fail), 0 by default: every run succeeds. */
let failShare = 0;
const fails = (piece: string) => failShare > 0 && fnv1a(`fail:${piece}`) % 10_000 < failShare * 10_000;
const FAILURE = "bench failure: this piece is in the failing share";
let inFlight = 0;
let key: Promise<Identity> | null = null;
let outbox: ReportOutbox | null = null;

/** Counts one run's arrival; workerd's clock reads the time of the last I/O event, here the request's. */
function arrived(now: number): void {
	const second = Math.floor(now / 1000);
	counts.perSecond.set(second, (counts.perSecond.get(second) ?? 0) + 1);
	counts.runs++;
	if (!counts.first) counts.first = now;
	counts.last = now;
}

/** Runs one run: waits its drawn duration, holding a place in flight meanwhile. */
async function run(durationMs: number): Promise<number> {
	inFlight++;
	counts.inFlightMax = Math.max(counts.inFlightMax, inFlight);
	const started = Date.now();
	if (durationMs > 0) await new Promise((resolve) => setTimeout(resolve, durationMs));
	inFlight--;
	counts.durations.push(durationMs);
	return Date.now() - started;
}

function stats() {
	const sorted = [...counts.durations].sort((a, b) => a - b);
	const mean = sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : null;
	return {
		runs: counts.runs,
		failed: counts.failed,
		requests: counts.requests,
		probes: counts.probes,
		first: counts.first,
		last: counts.last,
		perSecond: Object.fromEntries(counts.perSecond),
		inFlight,
		inFlightMax: counts.inFlightMax,
		latency: { runs: sorted.length, p50Ms: quantile(sorted, 0.5), p99Ms: quantile(sorted, 0.99), maxMs: sorted.at(-1) ?? null, meanMs: mean === null ? null : Math.round(mean) },
		reports: outbox?.counts ?? null,
	};
}

async function dispatch(request: Request, env: BenchRuntimeEnv, ctx: ExecutionContext): Promise<Response> {
	if (request.headers.get(HEADERS.version) !== PROTOCOL_V2) return Response.json({ error: "not a protocol 2 dispatch" }, { status: 401, headers: { [HEADERS.version]: PROTOCOL_V2 } });
	const { runs, reportTo, timeoutMs } = (await request.json()) as DispatchBody;
	const now = Date.now();
	counts.requests++;
	key ??= identityFromPassphrase(env.RUNTIME_PASS);
	outbox ??= new ReportOutbox(env.SCHEDULER, () => key!);
	const latency = parseLatency(env.BENCH_LATENCY);
	const acks: RunAck[] = runs.map((r) => {
		// A liveness probe: accepted, nothing run, nothing reported.
		if (r.probe) return (counts.probes++, { runId: r.runId, status: "accepted" });
		arrived(now);
		if (env.BENCH_RECORD_ARRIVALS === "1") arrivals.set(`${r.space}/${r.pieceId}`, [...(arrivals.get(`${r.space}/${r.pieceId}`) ?? []), now]);
		// The runtime stops a run at the dispatch's timeout, as a real one must.
		const drawn = Math.min(drawMs(latency, `${r.space}/${r.pieceId}`), timeoutMs);
		const failed = fails(`${r.space}/${r.pieceId}`);
		if (failed) counts.failed++;
		ctx.waitUntil(run(drawn).then((durationMs) => outbox!.add(reportTo, { ticket: r.ticket, runId: r.runId, ...(failed ? { outcome: "failed" as const, error: FAILURE } : { outcome: "ok" as const }), durationMs })));
		return { runId: r.runId, status: "accepted" };
	});
	return Response.json({ runs: acks }, { headers: { [HEADERS.version]: PROTOCOL_V2 } });
}

async function runV1(request: Request, env: BenchRuntimeEnv): Promise<Response> {
	const body = (await request.json()) as { space: string; pieceId: string; probe?: boolean };
	counts.requests++;
	if (body.probe) counts.probes++;
	else {
		arrived(Date.now());
		await run(drawMs(parseLatency(env.BENCH_LATENCY), `${body.space}/${body.pieceId}`));
		if (fails(`${body.space}/${body.pieceId}`) && ++counts.failed) return Response.json({ error: FAILURE }, { status: 422, headers: { [HEADERS.version]: "1" } });
	}
	return new Response('{"ok":true}', { status: 200, headers: { "content-type": "application/json", [HEADERS.version]: "1" } });
}

export default {
	async fetch(request, env, ctx): Promise<Response> {
		const route = `${request.method} ${new URL(request.url).pathname}`;
		switch (route) {
			case "GET /stats":
				return Response.json(stats());
			case "POST /reset":
				counts = freshCounts();
				counts.inFlightMax = inFlight;
				outbox?.reset();
				return Response.json({ ok: true });
			case "GET /arrivals":
				return Response.json(Object.fromEntries(arrivals));
			case "POST /fail":
				failShare = Math.min(1, Math.max(0, Number(new URL(request.url).searchParams.get("share")) || 0));
				return Response.json({ failShare });
			case "POST /v2/runs":
				return dispatch(request, env, ctx);
			case "POST /v1/run":
				return runV1(request, env);
			default:
				return new Response("not found", { status: 404 });
		}
	},
} satisfies ExportedHandler<BenchRuntimeEnv>;
