#!/usr/bin/env node
// `npm run bench [-- --pieces N] [-- --latency MEDIAN:P99]`: the scheduler's cost and limits
// benchmark (issue 4, docs/performance.md). It seeds N steady pieces into real local KV
// (Miniflare), runs one tick and every run it dispatches through the real local Queue and the
// product's handlers against the bench runtime (bench/runtime.ts), in the protocol
// wrangler.toml ships (2: one dispatch per consumer batch, outcomes reported back to the
// product's report route), counting every platform operation per invocation; then the same
// for the naive baseline (bench/naive.ts, protocol 1) on the same pieces. It prints a table,
// then as its last line one JSON object.
//
// Options:
//   --pieces N   pieces to seed (default 100000)
//   --latency MEDIAN:P99   runs take log-normal durations with this median and 99th
//                percentile (ms), e.g. 2000:30000; default: instant runs
//   --spread S   SPREAD_SECONDS for the current design (default 60, as wrangler.toml);
//                a smaller value only shortens the wait for the delayed runs
//   --delays M   auto (default) | on | off: whether the current design's delaySeconds reach
//                the local queue. Miniflare's broker keeps one timer per delayed message and
//                workerd allows 10,000 active timers, so beyond ~9,000 pieces `auto` records
//                the planned delays but sends the messages undelayed (see docs/performance.md)
//   --keep       keep the Miniflare state in .wrangler/bench/state afterwards
//   --quiet      no progress lines on stderr
//   --no-arrivals  leave out the last phase: `npm run bench:arrivals` at the same size (every
//                run delivered at its real delaySeconds over two ticks, several Miniflare
//                processes past ≈ 6,000 pieces), whose figures are the JSON line's
//                runtimePeakRps, runtimeMeanRps, runtimePeakToMean, lateness and periodJitterMs
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildSync } from "esbuild";
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions } from "miniflare";
import { throughputModel } from "./model.mjs";
import { RUNTIME_PASS, benchWorkers, buildBenchWorkers, shippedSettings } from "./rig.mjs";

/** Miniflare's log on stderr, so stdout keeps the table and the final JSON line. */
class StderrLog extends Log {
	log(message) {
		process.stderr.write(`${message}\n`);
	}
}

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, ".wrangler", "bench");
const args = parseArgs(process.argv.slice(2));
const PIECES = args.pieces;
const SPREAD = args.spread;
/** Largest tick whose delayed messages the local queue broker can hold (10,000 timers, with a margin). */
const LOCAL_DELAYED_MESSAGES_MAX = 9_000;
const DELAYS = args.delays === "auto" ? (PIECES <= LOCAL_DELAYED_MESSAGES_MAX ? "on" : "off") : args.delays;
const log = args.quiet ? () => {} : (...a) => console.error(`[bench ${clock()}]`, ...a);
/** workerd's cross-request-context warnings (see handleStructuredLogs below). */
let crossContextWarnings = 0;
const started = Date.now();

// Cloudflare's published prices (December 2026), in USD: KV $0.50 per million reads, $5 per
// million writes, deletes and lists; Queues $0.40 per million operations (3 per message);
// Workers $0.30 per million requests, $0.02 per million CPU-ms; Workers Logs $0.60 per million
// events past the 20 million a month included, which 1,000,000 pieces a minute (43.2 billion
// runs a month) dwarf.
const PRICE = { kvRead: 0.5e-6, kvWriteDeleteList: 5e-6, queueOp: 0.4e-6, request: 0.3e-6, cpuMs: 0.02e-6, logEvent: 0.6e-6 };
const LIMITS = { kvOps: 1000, subrequests: 10_000, memoryMb: 128, period: 60 };

// ---------------------------------------------------------------------------------------
// Build: the bench Worker, the bench runtime, and the fan-out for the Node CPU measurement.
mkdirSync(out, { recursive: true });
buildBenchWorkers(root, out);
const common = { bundle: true, format: "esm", logLevel: "error", target: "es2022" };
buildSync({ ...common, platform: "node", entryPoints: [join(root, "bench/fanout-cpu.ts")], outfile: join(out, "fanout-cpu.mjs") });
buildSync({ ...common, platform: "node", entryPoints: [join(root, "src/identity/ed25519.ts")], outfile: join(out, "identity.mjs") });
// What wrangler.toml ships: the compatibility date, the runtime protocol, the run timeout, the
// run queue's batch, Workers Logs.
const SHIPPED = shippedSettings(root);
const PROTOCOL = SHIPPED.protocol;
const OBSERVABILITY = SHIPPED.observability;
/** The share of log events billed: what observability records. */
const LOGGED = OBSERVABILITY.enabled ? OBSERVABILITY.headSamplingRate : 0;
/** The mixed population: this share of pieces fails in the third phase (having succeeded before). */
const MIXED_FAIL_SHARE = 0.05;
const { identityFromPassphrase } = await import(pathToFileURL(join(out, "identity.mjs")).href);
const runtimeDid = (await identityFromPassphrase(RUNTIME_PASS)).did;
const LATENCY = args.latency;
// The run queue's consumer batch, as wrangler.toml sets it.
const BATCH = SHIPPED.batch.size;
// The local broker delivers one batch per queue at a time; runs that hold their invocation
// (the naive design under --latency) get several local queues, ≈ 5 batches each, to drain.
const NAIVE_QUEUES = LATENCY ? Math.min(50, Math.max(1, Math.ceil(PIECES / (BATCH * 5)))) : 1;
const naiveQueueNames = Array.from({ length: NAIVE_QUEUES - 1 }, (_, i) => `bench-naive-runs-${i + 1}`);
// As wrangler.toml: batch size and timeout (1 s); max_retries 3.
const consumerSettings = { maxBatchSize: BATCH, maxBatchTimeout: SHIPPED.batch.timeoutSeconds, maxRetries: 3 };

// A tick on a minute boundary; the seeded pieces ran one period before it.
const T = Math.floor(Date.now() / 60_000) * 60_000;

// ---------------------------------------------------------------------------------------
// 1. The fan-out's own CPU, in Node's V8 with in-memory bindings (no platform cost).
log(`fan-out CPU in Node over ${PIECES} in-memory pieces…`);
const { measureFanoutCpu } = await import(pathToFileURL(join(out, "fanout-cpu.mjs")).href);
const fanoutCpu = await measureFanoutCpu(PIECES, T);
log(`  ${fmt(fanoutCpu.cpuMs)} ms CPU, ${fmt((fanoutCpu.cpuMs * 1000) / PIECES, 2)} µs a piece`);

// ---------------------------------------------------------------------------------------
// 2. Miniflare: the bench Worker (real handlers, counting bindings), the bench runtime,
//    real local KV and Queue, persisted on disk under .wrangler/bench/state.
const stateDir = join(out, "state");
rmSync(stateDir, { recursive: true, force: true });
const inspectorPort = await freePort();
// Miniflare 5 takes a new options shape; convertV4MiniflareOptions accepts the documented
// (v4) one, which is what this bench is written against.
const mf = new Miniflare(convertV4MiniflareOptions({
	host: "127.0.0.1",
	port: 0,
	inspectorPort,
	telemetry: { enabled: false },
	// Loopback only: no fetch of the `Request.cf` sample from workers.cloudflare.com.
	cf: false,
	// Warnings and errors of the local simulators (e.g. a queue broker failing) go to stderr.
	log: new StderrLog(process.env.BENCH_LOG === "debug" ? LogLevel.DEBUG : LogLevel.WARN),
	// workerd's own output goes to stderr too, so stdout keeps the table and the JSON line. The
	// local queue broker's delayed deliveries make workerd warn of a promise resolved "from a
	// different request context" (none without --delays on; every message is still delivered):
	// counted, not printed.
	handleStructuredLogs: ({ message }) => {
		if (message.includes("different request context")) crossContextWarnings++;
		else process.stderr.write(`${message}\n`);
	},
	resourcePersistencePath: stateDir,
	workers: benchWorkers({
		out,
		settings: SHIPPED,
		runtimeDid,
		spreadSeconds: SPREAD,
		consumer: consumerSettings,
		extraQueues: naiveQueueNames,
		bindings: { BENCH_NAIVE_QUEUES: String(NAIVE_QUEUES) },
		runtimeBindings: { BENCH_LATENCY: LATENCY?.text ?? "" },
		inspector: true,
	}),
}));
let heap = { usage: async () => null, close() {} };
let sampler;
const cleanup = async () => {
	clearInterval(sampler);
	heap.close();
	await mf.dispose().catch(() => {});
	if (!args.keep) rmSync(stateDir, { recursive: true, force: true });
};
process.on("SIGINT", async () => {
	// Miniflare's own exit hook may end the process before an async cleanup finishes.
	if (!args.keep) rmSync(stateDir, { recursive: true, force: true });
	await cleanup();
	process.exit(130);
});

await mf.ready;
const workerd = findWorkerd();
log(`workerd pid ${workerd ?? "not found"}; inspector on ${inspectorPort}`);
heap = await heapProbe(`ws://127.0.0.1:${inspectorPort}/bench-worker`);

// Memory: sample workerd's RSS (and the bench isolate's V8 heap) while a phase runs.
let window = { rssPeakKb: 0, heapPeak: 0 };
let sampling = false;
sampler = setInterval(async () => {
	if (sampling || !workerd) return;
	sampling = true;
	try {
		window.rssPeakKb = Math.max(window.rssPeakKb, procStatus(workerd).VmRSS ?? 0);
		const h = await heap.usage();
		if (h) window.heapPeak = Math.max(window.heapPeak, h.usedSize);
	} catch {}
	sampling = false;
}, 200);
async function phase(fn) {
	const heapBefore = (await heap.usage())?.usedSize ?? 0;
	if (workerd) clearRefs(workerd);
	window = { rssPeakKb: 0, heapPeak: heapBefore };
	const rssBefore = workerd ? procStatus(workerd).VmRSS : 0;
	const cpuBefore = workerd ? procCpuMs(workerd) : 0;
	const wall = Date.now();
	const result = await fn();
	const status = workerd ? procStatus(workerd) : {};
	return {
		result,
		wallMs: Date.now() - wall,
		workerdCpuMs: workerd ? procCpuMs(workerd) - cpuBefore : null,
		rssBeforeMb: mb(rssBefore),
		rssPeakMb: mb(Math.max(window.rssPeakKb, status.VmHWM ?? 0)),
		heapBeforeMb: heapBefore ? heapBefore / 2 ** 20 : null,
		heapPeakMb: window.heapPeak ? window.heapPeak / 2 ** 20 : null,
	};
}

try {
	// 3. Seed N steady pieces (status Success, lastRun a minute ago, due at T): not counted.
	const seedStarted = Date.now();
	const SEED_CHUNK = 2000;
	const seedJobs = [];
	for (let from = 0; from < PIECES; from += SEED_CHUNK) seedJobs.push([from, Math.min(SEED_CHUNK, PIECES - from)]);
	let seeded = 0;
	await forEachLimit(seedJobs, 4, async ([from, count]) => {
		await call("POST", `/bench/seed?from=${from}&count=${count}&tick=${T}`);
		seeded += count;
		if (seeded % 20_000 < SEED_CHUNK) log(`seeded ${seeded}/${PIECES}`);
	});
	log(`seeded ${PIECES} pieces in ${fmt((Date.now() - seedStarted) / 1000, 1)} s`);

	// 4. The current design, then the naive one on the same pieces a period later.
	const current = await runDesign("current", T);
	const naive = await runDesign("naive", T + 60_000);
	// The same pieces a period later, in the current design, with 5% of them failing.
	const mixed = await runDesign("mixed", T + 120_000);

	// 5. Report.
	const report = {
		pieces: PIECES,
		...current.figures,
		spreadSeconds: SPREAD,
		delays: DELAYS,
		latencyOption: LATENCY ? { medianMs: LATENCY.medianMs, p99Ms: LATENCY.p99Ms, mu: Number(LATENCY.mu.toFixed(4)), sigma: Number(LATENCY.sigma.toFixed(4)) } : null,
		naiveLocalQueues: NAIVE_QUEUES,
		// The fan-out code alone (src/fanout.ts in Node's V8, in-memory bindings): CPU per piece.
		fanoutCpuUsPerPiece: Number(((fanoutCpu.cpuMs * 1000) / PIECES).toFixed(3)),
		fanoutCpuNode: { ...fanoutCpu, cpuMs: Number(fanoutCpu.cpuMs.toFixed(2)), wallMs: Number(fanoutCpu.wallMs.toFixed(2)) },
		baseline: naive.figures,
		mixed: perRunFigures(mixed.figures),
		observability: OBSERVABILITY,
		workerdCrossContextWarnings: crossContextWarnings,
		benchSeconds: Math.round((Date.now() - started) / 1000),
	};
	await cleanup();
	// 6. The runtime's load with real delays over two ticks (bench/arrivals.mjs), once this
	// rig's Miniflare is gone: its figures are the JSON line's runtimePeakRps and the rest.
	const arrivals = args.arrivals ? await measureArrivals() : null;
	printTable(report, current, naive);
	printMixed(report.mixed);
	if (arrivals) process.stdout.write(arrivals.table);
	console.log(JSON.stringify({ ...report, ...arrivalFigures(arrivals?.report) }));
} finally {
	await cleanup();
}

/**
 * Runs `npm run bench:arrivals` for the same number of pieces (its processes, its pace: one
 * lane's) and answers its table and its JSON report.
 */
async function measureArrivals() {
	log(`arrivals: ${PIECES} pieces, every run at its real delaySeconds, two ticks (bench/arrivals.mjs)`);
	const child = spawn(process.execPath, [join(root, "bench/arrivals.mjs"), "--pieces", String(PIECES)], { stdio: ["ignore", "pipe", args.quiet ? "ignore" : "inherit"] });
	let stdout = "";
	child.stdout.on("data", (chunk) => (stdout += chunk));
	const code = await new Promise((resolve) => child.on("close", resolve));
	const lines = stdout.trimEnd().split("\n");
	if (code !== 0) throw new Error(`bench/arrivals.mjs exited ${code}: ${lines.slice(-5).join(" | ")}`);
	return { table: `${lines.slice(0, -1).join("\n")}\n`, report: JSON.parse(lines.at(-1)) };
}

/** The arrivals phase's measured figures, as the JSON line names them (null without the phase: --no-arrivals). */
function arrivalFigures(a) {
	return {
		runtimePeakRps: a?.runtimePeakRps ?? null,
		runtimeMeanRps: a?.runtimeMeanRps ?? null,
		runtimePeakToMean: a?.peakToMean ?? null,
		lateness: a ? { p50Ms: a.lateness.p50Ms, p99Ms: a.lateness.p99Ms } : null,
		periodJitterMs: a ? { p50: a.periodJitterMs.p50, p99: a.periodJitterMs.p99 } : null,
		arrivals: a ? { instances: a.instances, pace: a.pace, runs: a.runs, missing: a.missing, batch: a.batch, benchSeconds: a.benchSeconds } : null,
	};
}

// ---------------------------------------------------------------------------------------

/** One design: reset the counts, fire one tick, wait for every run it dispatched. */
async function runDesign(design, tickTime) {
	await call("POST", "/bench/reset-stats");
	const delays = design !== "naive" ? DELAYS : "off";
	await call("POST", `/bench/design?design=${design === "naive" ? "naive" : "current"}&delays=${delays}`);
	await call("POST", `/bench/fail?share=${design === "mixed" ? MIXED_FAIL_SHARE : 0}`);
	log(`${design}: tick at ${new Date(tickTime).toISOString()}…`);
	const fired = Date.now();
	const tick = await phase(async () => {
		const worker = await mf.getWorker("bench-worker");
		// The real scheduled() entry point, as the Cron Trigger fires it.
		await worker.scheduled({ scheduledTime: new Date(tickTime), cron: "* * * * *" });
	});
	const afterTick = await call("GET", "/bench/stats");
	if (afterTick.tick.errors) throw new Error(`${design} tick failed: ${afterTick.lastErrors.join(" | ")}`);
	const dispatched = afterTick.tick.totals.queueMessages;
	const failed = afterTick.tick.totals.queueMessagesFailed;
	log(`${design}: tick took ${fmt(tick.wallMs / 1000, 1)} s, dispatched ${dispatched}${failed ? `, ${failed} failed to send` : ""}; delays ${delays}; waiting for the runs…`);

	// Bounded wait: the spread, then the rig's throughput, the runs' durations, and a stall cut-off.
	const deadline = Date.now() + (design !== "naive" ? SPREAD : 0) * 1000 + 120_000 + dispatched * 20 + latencyAllowanceMs(design, dispatched);
	const stallMs = 60_000 + (LATENCY ? 5 * LATENCY.p99Ms : 0);
	let lastProgress = { done: -1, at: Date.now() };
	let lastLog = Date.now();
	let stats = afterTick;
	const reported = (s) => Object.values(s.reports).reduce((a, b) => a + b, 0);
	const runs = await phase(async () => {
		for (;;) {
			stats = await call("GET", "/bench/stats");
			// Protocol 2: a message is acked at its dispatch; its run is done when its report is in.
			if (stats.acked >= dispatched && stats.inFlight === 0 && stats.runsOutstanding === 0) return "complete";
			const done = stats.acked + reported(stats);
			if (done !== lastProgress.done) lastProgress = { done, at: Date.now() };
			const waitingForDelays = delays === "on" && Date.now() - fired < (SPREAD + 5) * 1000;
			if (!waitingForDelays && Date.now() - lastProgress.at > stallMs) return "stalled";
			if (Date.now() > deadline) return "deadline";
			if (Date.now() - lastLog >= 10_000) (lastLog = Date.now()), log(`${design}: ${stats.acked}/${dispatched} messages done, ${reported(stats)} reports in, ${stats.runsOutstanding} runs outstanding`);
			await sleep(500);
		}
	});
	stats = await call("GET", "/bench/stats");
	const runtime = await call("GET", "/bench/runtime-stats");
	log(`${design}: runs ${runs.result} after ${fmt(runs.wallMs / 1000, 1)} s (${stats.acked} acked, ${stats.retried} retried, ${reported(stats)} reports, ${stats.errorLines} error lines)`);
	if (stats.errorLines) log(`${design}: last errors: ${stats.lastErrors.slice(-3).join(" | ")}`);
	return { design, tick, runs, stats, runtime, figures: { ...figures(design, fired, dispatched, tick, runs, stats, runtime), deliveryDelaysSimulated: delays === "on" } };
}

/**
 * Extra wait for runs that take time: a protocol 2 run is in flight for its duration at most
 * (≈ 10 × p99 covers the tail); a naive batch holds its consumer for ≈ BATCH runs ÷ 6 at once
 * of the mean duration, on each of NAIVE_QUEUES local queues in turn.
 */
function latencyAllowanceMs(design, dispatched) {
	if (!LATENCY) return 0;
	const meanMs = Math.exp(LATENCY.mu + LATENCY.sigma ** 2 / 2);
	const batchesPerQueue = design === "naive" ? Math.ceil(dispatched / BATCH / NAIVE_QUEUES) : 0;
	return 10 * LATENCY.p99Ms + batchesPerQueue * 3 * (BATCH / 6) * meanMs;
}

/** The per-run figures and the cost model of one design (`fired`: when the tick was fired). */
function figures(design, fired, dispatched, tick, runs, s, runtime) {
	const t = s.tick.totals;
	const c = s.consumer.totals;
	const rp = s.report.totals;
	const kinds = [s.tick, s.consumer, s.report];
	const per = (x) => (dispatched ? x / dispatched : 0);
	const sum = (k) => t[k] + c[k] + rp[k];
	const kvReads = sum("kvReads");
	const kvWrites = sum("kvWrites");
	const kvLists = sum("kvLists");
	const kvDeletes = sum("kvDeletes");
	const messages = t.queueMessages + c.queueMessages;
	const queueOps = 3 * messages + s.retried;
	// Every invocation is a billed request (report requests included) and one log event, and
	// every console.log/console.error call one more.
	const requests = kinds.reduce((a, k) => a + k.invocations, 0);
	const logEvents = requests + sum("consoleCalls");
	// What Workers Logs bills: the events observability records (wrangler.toml's setting).
	const billedLogEvents = logEvents * LOGGED;
	// CPU: workerd's whole process (also the local KV and Queue simulators and the runtime),
	// so an upper bound of the Worker's own CPU.
	const cpuMs = (tick.workerdCpuMs ?? 0) + (runs.workerdCpuMs ?? 0);
	const cost = {
		kvReads: per(kvReads) * PRICE.kvRead * 1e6,
		kvWritesDeletesLists: per(kvWrites + kvDeletes + kvLists) * PRICE.kvWriteDeleteList * 1e6,
		queues: per(queueOps) * PRICE.queueOp * 1e6,
		requests: per(requests) * PRICE.request * 1e6,
		cpu: per(cpuMs) * PRICE.cpuMs * 1e6,
		logs: per(billedLogEvents) * PRICE.logEvent * 1e6,
	};
	const costPerMillionRunsUsd = Object.values(cost).reduce((a, b) => a + b, 0);

	// The runtime's load: arrivals per wall-clock second. The mean is over the period (60 s:
	// each piece runs once a minute) or over the arrivals' span if the rig took longer.
	const seconds = Object.entries(runtime.perSecond).map(([sec, n]) => [Number(sec), n]);
	// The throughput model (bench/model.mjs) from the consumer invocations as measured.
	const reportRequests = s.report.invocations;
	const reportsIn = Object.values(s.reports).reduce((a, b) => a + b, 0);
	const maxOf = (k) => Math.max(...kinds.map((x) => x[k]));
	const throughput = throughputModel({
		runsPerInvocation: s.consumer.invocations ? s.delivered / s.consumer.invocations : 0,
		invocationWallMs: s.consumer.invocations ? s.consumer.wallMs / s.consumer.invocations : 0,
		// Connections: the invocations that scale with the runs (a tick's are its own, in perInvocationMax).
		perInvocationMax: { kvOps: maxOf("maxKvOps"), subrequests: maxOf("maxSubrequests"), open: Math.max(s.consumer.maxOpen, s.report.maxOpen) },
		meanRunMs: runtime.latency.meanMs,
		reportsPerRequest: reportRequests ? reportsIn / reportRequests : null,
		holdsRuns: design === "naive",
	});
	const peak = Math.max(0, ...seconds.map(([, n]) => n));
	const drainSeconds = runtime.last ? (runtime.last - fired) / 1000 : 0;
	const spanSeconds = Math.max(LIMITS.period, drainSeconds);
	const plannedPeak = Math.max(0, ...Object.values(s.delayHistogram));
	const arrivalPeak = Math.max(0, ...Object.values(s.arrivalHistogram));
	const lastArrival = Math.max(0, ...Object.keys(s.arrivalHistogram).map(Number)) + 1;
	const r = (x, d = 4) => Number(x.toFixed(d));
	return {
		design,
		dispatched,
		sendFailures: t.queueMessagesFailed,
		tickSummary: s.lastTickSummary,
		protocol: design === "naive" ? "1" : PROTOCOL,
		// Protocol 1: messages handled; protocol 2: runs whose report the Worker answered.
		runsCompleted: design === "naive" || PROTOCOL !== "2" ? s.acked : reportsIn,
		reports: PROTOCOL === "2" && design !== "naive" ? { requests: reportRequests, reports: reportsIn, perRequest: reportRequests ? r(reportsIn / reportRequests, 2) : null, byStatus: s.reports, requestsFailed: s.reportRequestsFailed, runtimeSide: runtime.reports } : null,
		runsStatus: runs.result,
		fanoutMs: tick.wallMs,
		fanoutMsPerPiece: r(per(tick.wallMs), 5),
		fanoutWorkerdCpuMs: tick.workerdCpuMs,
		fanoutWorkerdCpuMsPerPiece: tick.workerdCpuMs === null ? null : r(per(tick.workerdCpuMs), 5),
		// Every delivery (retries and redeliveries included) per run that reached the runtime.
		queueMessagesPerRun: runtime.runs ? r((messages + s.retried) / runtime.runs) : null,
		queueMessagesPerDispatched: r(per(messages)),
		runtimeFailedRuns: runtime.failed ?? 0,
		kvReadsPerRun: r(per(kvReads)),
		kvWritesPerRun: r(per(kvWrites)),
		kvListsPerRun: r(per(kvLists), 5),
		kvDeletesPerRun: r(per(kvDeletes)),
		queueOperationsPerRun: r(per(queueOps)),
		retries: s.retried,
		invocations: { tick: s.tick.invocations, consumer: s.consumer.invocations, report: s.report.invocations },
		kvOpsPerInvocationMax: maxOf("maxKvOps"),
		subrequestsPerInvocationMax: maxOf("maxSubrequests"),
		perInvocationMax: Object.fromEntries(
			["tick", "consumer", "report"].map((k) => [k, { kvOps: s[k].maxKvOps, subrequests: s[k].maxSubrequests, openSubrequests: s[k].maxOpen, wallMs: s[k].maxWallMs }]),
		),
		consumerWallMsMean: s.consumer.invocations ? r(s.consumer.wallMs / s.consumer.invocations, 1) : null,
		reportWallMsMean: s.report.invocations ? r(s.report.wallMs / s.report.invocations, 1) : null,
		// The most runs one consumer invocation had dispatched and not yet finished at any one
		// moment during that invocation (protocol 2: its dispatch's runs, from the request until
		// their reports, but the invocation ends at the ack; protocol 1: its open run requests).
		runsInFlightMax: s.consumer.maxRunsInFlight,
		// The most runs the runtime held at once, over all invocations.
		runtimeRunsInFlightMax: runtime.inFlightMax,
		latency: { p50Ms: runtime.latency.p50Ms, p99Ms: runtime.latency.p99Ms, meanMs: runtime.latency.meanMs, maxMs: runtime.latency.maxMs, runs: runtime.latency.runs },
		workerdCpuMsPerRun: r(per(cpuMs)),
		costPerMillionRunsUsd: r(costPerMillionRunsUsd),
		costBreakdownPerMillionRunsUsd: Object.fromEntries(Object.entries(cost).map(([k, v]) => [k, r(v)])),
		// This one tick's runs as the rig drained them (one local broker, one tick): the design's
		// load only while its delays reached the queue (runtimeRateShowsDesign). The runtime's
		// load with real delays at any size, over two ticks, is the arrivals phase's
		// (runtimePeakRps, runtimeMeanRps, lateness, periodJitterMs at the top level).
		drainPeakRps: peak,
		drainMeanRps: r(runtime.runs / spanSeconds, 2),
		drainPeakToMean: runtime.runs ? r((peak * spanSeconds) / runtime.runs, 2) : null,
		// Runs arrived at the runtime, and the requests that carried them (protocol 2: one per batch).
		runtimeRuns: runtime.runs,
		runtimeRequests: runtime.requests,
		runtimeDrainSeconds: r(drainSeconds, 1),
		// Runs that took longer than the period to drain were held up by the local rig (one
		// consumer invocation at a time), so the measured rate is the rig's, not the design's.
		runtimeRigLimited: drainSeconds > LIMITS.period,
		// The measured rate shows the design's load profile only if its delays reached the
		// queue (the naive design sends none) and the rig kept up.
		runtimeRateShowsDesign: (design === "naive" || DELAYS === "on") && drainSeconds <= LIMITS.period,
		// The design's own profile, from what it sent: by delaySeconds alone (as if every
		// message were sent at the tick), and by send time + delaySeconds (fan-out time included).
		plannedPeakPerSecond: plannedPeak,
		plannedPeakToMean: dispatched ? r((plannedPeak * LIMITS.period) / dispatched, 2) : null,
		plannedArrivalPeakPerSecond: arrivalPeak,
		plannedArrivalPeakToMean: dispatched ? r((arrivalPeak * LIMITS.period) / dispatched, 2) : null,
		// When the last message becomes deliverable, in seconds after the tick started.
		lastRunDueSeconds: lastArrival,
		memory: {
			workerdRssIdleMb: tick.rssBeforeMb,
			workerdRssPeakTickMb: tick.rssPeakMb,
			workerdRssPeakRunsMb: runs.rssPeakMb,
			isolateHeapBeforeTickMb: round1(tick.heapBeforeMb),
			isolateHeapPeakTickMb: round1(tick.heapPeakMb),
			isolateHeapPeakRunsMb: round1(runs.heapPeakMb),
			limitMb: LIMITS.memoryMb,
		},
		logLines: s.logLines,
		errorLines: s.errorLines,
		logEvents,
		logEventsPerRun: r(per(logEvents)),
		billedLogEventsPerRun: r(per(billedLogEvents)),
		logEventsByKind: Object.fromEntries(["tick", "consumer", "report"].map((k) => [k, { invocations: s[k].invocations, consoleCalls: s[k].totals.consoleCalls }])),
		piecesPerMinutePerQueue: throughput.piecesPerMinutePerQueue,
		piecesPerMinuteMax: throughput.piecesPerMinuteMax,
		throughputModel: throughput.model,
	};
}

/** The per-run figures of a phase, for the JSON line's `mixed` object. */
function perRunFigures(f) {
	const keys = ["design", "dispatched", "runtimeRuns", "runtimeFailedRuns", "runsStatus", "queueMessagesPerRun", "queueOperationsPerRun", "kvReadsPerRun", "kvWritesPerRun", "kvListsPerRun", "logEventsPerRun", "billedLogEventsPerRun", "costPerMillionRunsUsd", "costBreakdownPerMillionRunsUsd"];
	return { failShare: MIXED_FAIL_SHARE, ...Object.fromEntries(keys.map((k) => [k, f[k]])) };
}

function printTable(report, current, naive) {
	const a = current.figures;
	const b = naive.figures;
	const rows = [
		["pieces", PIECES, PIECES],
		["runtime protocol", a.protocol, b.protocol],
		["run durations at the runtime: p50 / p99 / max", latencyRow(a.latency), latencyRow(b.latency)],
		["dispatched by one tick", a.dispatched, b.dispatched],
		["messages that failed to send", a.sendFailures, b.sendFailures],
		["delaySeconds reach the local queue", a.deliveryDelaysSimulated ? "yes" : "no (recorded only)", "none sent"],
		["runs completed", `${a.runsCompleted} (${a.runsStatus})`, `${b.runsCompleted} (${b.runsStatus})`],
		["fan-out wall (tick)", `${fmt(a.fanoutMs)} ms`, `${fmt(b.fanoutMs)} ms`],
		["fan-out wall per piece", `${fmt(a.fanoutMsPerPiece * 1000, 2)} µs`, `${fmt(b.fanoutMsPerPiece * 1000, 2)} µs`],
		["fan-out CPU per piece (workerd, upper bound)", `${fmt(a.fanoutWorkerdCpuMsPerPiece * 1000, 2)} µs`, `${fmt(b.fanoutWorkerdCpuMsPerPiece * 1000, 2)} µs`],
		["fan-out CPU per piece (fanOut alone, Node)", `${fmt((report.fanoutCpuNode.cpuMs * 1000) / PIECES, 2)} µs`, "-"],
		["queue messages per run", a.queueMessagesPerRun, b.queueMessagesPerRun],
		["KV reads per run", a.kvReadsPerRun, b.kvReadsPerRun],
		["KV writes per run", a.kvWritesPerRun, b.kvWritesPerRun],
		["KV lists per run", a.kvListsPerRun, b.kvListsPerRun],
		["queue retries", a.retries, b.retries],
		["invocations (tick + consumer + report)", `${a.invocations.tick} + ${a.invocations.consumer} + ${a.invocations.report}`, `${b.invocations.tick} + ${b.invocations.consumer} + ${b.invocations.report}`],
		["reports per report request", a.reports?.perRequest ?? "-", "-"],
		["max KV ops, one invocation (limit 1,000)", fmtMax(a.perInvocationMax, "kvOps"), fmtMax(b.perInvocationMax, "kvOps")],
		["max subrequests, one invocation (limit 10,000)", fmtMax(a.perInvocationMax, "subrequests"), fmtMax(b.perInvocationMax, "subrequests")],
		["max subrequests open at once (limit 6 connections)", fmtMax(a.perInvocationMax, "openSubrequests"), fmtMax(b.perInvocationMax, "openSubrequests")],
		["consumer invocation wall, mean", `${fmt(a.consumerWallMsMean, 1)} ms`, `${fmt(b.consumerWallMsMean, 1)} ms`],
		["runs in flight per consumer invocation, max", a.runsInFlightMax, b.runsInFlightMax],
		["runs in flight at the runtime, max", a.runtimeRunsInFlightMax, b.runtimeRunsInFlightMax],
		["log events per run (invocations + console calls)", a.logEventsPerRun, b.logEventsPerRun],
		[`  billed (observability ${OBSERVABILITY.enabled ? `on, head_sampling_rate ${OBSERVABILITY.headSamplingRate}` : "off"})`, a.billedLogEventsPerRun, b.billedLogEventsPerRun],
		["workerd CPU per run (upper bound)", `${fmt(a.workerdCpuMsPerRun, 3)} ms`, `${fmt(b.workerdCpuMsPerRun, 3)} ms`],
		["cost per million runs", `$${fmt(a.costPerMillionRunsUsd, 2)}`, `$${fmt(b.costPerMillionRunsUsd, 2)}`],
		...Object.keys(a.costBreakdownPerMillionRunsUsd).map((k) => [`  of which ${k}`, `$${fmt(a.costBreakdownPerMillionRunsUsd[k], 3)}`, `$${fmt(b.costBreakdownPerMillionRunsUsd[k], 3)}`]),
		["pieces a minute per queue (modelled)", `${fmt(a.piecesPerMinutePerQueue)} (${a.throughputModel.perQueueBinds} bind)`, `${fmt(b.piecesPerMinutePerQueue)} (${b.throughputModel.perQueueBinds} bind)`],
		["pieces a minute, 16 lanes (modelled)", `${fmt(a.piecesPerMinuteMax)} (${a.throughputModel.perLaneBinds} bind)`, `${fmt(b.piecesPerMinuteMax)} (${b.throughputModel.perLaneBinds} bind)`],
		["1,000,000 a minute within every limit (modelled)", a.throughputModel.goal.met ? "yes" : "no", b.throughputModel.goal.met ? "yes" : "no"],
		["one tick's drain at the runtime: peak runs/s", a.drainPeakRps, b.drainPeakRps],
		["  mean runs/s (over max(60 s, drain))", a.drainMeanRps, b.drainMeanRps],
		["  peak / mean", `${a.drainPeakToMean}${a.runtimeRateShowsDesign ? "" : " (not the design's: see below)"}`, `${b.drainPeakToMean}${b.runtimeRateShowsDesign ? "" : " (not the design's: see below)"}`],
		["last run after the tick", `${fmt(a.runtimeDrainSeconds, 1)} s${a.runtimeRigLimited ? " (rig-limited)" : ""}`, `${fmt(b.runtimeDrainSeconds, 1)} s${b.runtimeRigLimited ? " (rig-limited)" : ""}`],
		["planned peak / mean: delaySeconds alone", a.plannedPeakToMean, b.plannedPeakToMean],
		["planned peak / mean: send time + delaySeconds", a.plannedArrivalPeakToMean, b.plannedArrivalPeakToMean],
		["last message deliverable after the tick", `${a.lastRunDueSeconds} s`, `${b.lastRunDueSeconds} s`],
		["workerd RSS: idle / peak tick / peak runs (MB)", memRow(a.memory, "workerdRss"), memRow(b.memory, "workerdRss")],
		["bench isolate heap: before / peak tick / peak runs (MB)", memRow(a.memory, "isolateHeap"), memRow(b.memory, "isolateHeap")],
	];
	const w0 = Math.max(...rows.map((r) => String(r[0]).length));
	const w1 = Math.max("current".length, ...rows.map((r) => String(r[1]).length));
	const line = (r) => `${String(r[0]).padEnd(w0)}  ${String(r[1]).padStart(w1)}  ${String(r[2])}`;
	console.log(`\nScheduler benchmark: ${PIECES} pieces, SPREAD_SECONDS ${SPREAD}, delaySeconds to the local queue: ${DELAYS}, runs ${LATENCY ? `log-normal, median ${LATENCY.medianMs} ms, p99 ${LATENCY.p99Ms} ms` : "instant"}${NAIVE_QUEUES > 1 ? `, naive runs over ${NAIVE_QUEUES} local queues` : ""}, Miniflare ${mfVersion()}\n`);
	console.log(line(["", "current", "naive (baseline)"]));
	for (const r of rows) console.log(line(r));
	if (!a.runtimeRateShowsDesign || !b.runtimeRateShowsDesign) {
		console.log(`\nA drain rate marked "not the design's" shows the local rig, not the design: its delaySeconds did not reach the local queue (--delays off) or the rig, one consumer invocation at a time, took over 60 s to drain. The planned peak / mean (from each message's delaySeconds) is the design's profile.`);
	}
	console.log(`\nfanOut alone in Node: ${fmt(report.fanoutCpuNode.cpuMs)} ms CPU for ${PIECES} pieces; total bench time ${report.benchSeconds} s\n`);
}

function printMixed(m) {
	console.log(`Mixed population: the same pieces a period later, ${m.failShare * 100}% of them failing (having succeeded the tick before), current design`);
	console.log(`  runs ${m.runtimeRuns} (${m.runtimeFailedRuns} failed, ${m.runsStatus}); per run: queue messages ${m.queueMessagesPerRun}, KV reads ${m.kvReadsPerRun}, KV writes ${m.kvWritesPerRun}, log events ${m.logEventsPerRun}; $${fmt(m.costPerMillionRunsUsd, 3)} per million runs\n`);
}

function fmtMax(m, k) {
	return `tick ${m.tick[k]} / consumer ${m.consumer[k]} / report ${m.report[k]}`;
}
function latencyRow(l) {
	return l.runs ? `${fmt(l.p50Ms)} / ${fmt(l.p99Ms)} / ${fmt(l.maxMs)} ms` : "-";
}
function memRow(m, prefix) {
	const v = prefix === "workerdRss" ? [m.workerdRssIdleMb, m.workerdRssPeakTickMb, m.workerdRssPeakRunsMb] : [m.isolateHeapBeforeTickMb, m.isolateHeapPeakTickMb, m.isolateHeapPeakRunsMb];
	return v.map((x) => (x === null || x === undefined ? "n/a" : fmt(x, 1))).join(" / ");
}

// --- helpers -------------------------------------------------------------------------------

async function call(method, path) {
	const response = await mf.dispatchFetch(`http://bench.local${path}`, { method });
	const text = await response.text();
	if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text.slice(0, 500)}`);
	return JSON.parse(text);
}

async function forEachLimit(items, limit, task) {
	let next = 0;
	await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
		while (next < items.length) await task(items[next++]);
	}));
}

/** The workerd process Miniflare started (a child of this process). */
function findWorkerd() {
	for (const entry of readdirSync("/proc")) {
		if (!/^\d+$/.test(entry)) continue;
		try {
			const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
			const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
			const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
			if (ppid === process.pid && comm.includes("workerd")) return Number(entry);
		} catch {}
	}
	return null;
}

function procStatus(pid) {
	const fields = {};
	for (const line of readFileSync(`/proc/${pid}/status`, "utf8").split("\n")) {
		const m = /^(Vm\w+):\s+(\d+) kB/.exec(line);
		if (m) fields[m[1]] = Number(m[2]);
	}
	return fields;
}

/** user + system CPU of a process, in ms (clock ticks are 1/100 s on Linux). */
function procCpuMs(pid) {
	const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
	const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
	return (Number(rest[11]) + Number(rest[12])) * 10;
}

/** Resets the process's peak RSS (VmHWM) so it measures one phase. */
function clearRefs(pid) {
	try {
		writeFileSync(`/proc/${pid}/clear_refs`, "5");
	} catch {}
}

/** V8 heap of the bench Worker's isolate, over the inspector (Runtime.getHeapUsage). */
async function heapProbe(url) {
	const none = { usage: async () => null, close() {} };
	if (typeof WebSocket === "undefined") return none;
	let ws;
	try {
		ws = await new Promise((resolve, reject) => {
			// Miniflare's inspector proxy takes only local origins (undici sends none of its own).
			const socket = new WebSocket(url, { headers: { origin: "http://127.0.0.1" } });
			const timer = setTimeout(() => reject(new Error("timeout")), 5000);
			socket.onopen = () => (clearTimeout(timer), resolve(socket));
			socket.onerror = () => (clearTimeout(timer), reject(new Error("inspector connection failed")));
		});
	} catch (error) {
		log(`no isolate heap figures: ${error.message}`);
		return none;
	}
	let id = 0;
	const pending = new Map();
	ws.onmessage = (event) => {
		const message = JSON.parse(String(event.data));
		if (message.id && pending.has(message.id)) {
			pending.get(message.id)(message.result ?? null);
			pending.delete(message.id);
		}
	};
	const send = (method, params = {}) =>
		new Promise((resolve) => {
			const mine = ++id;
			pending.set(mine, resolve);
			ws.send(JSON.stringify({ id: mine, method, params }));
			setTimeout(() => pending.has(mine) && (pending.delete(mine), resolve(null)), 3000);
		});
	// (workerd does not answer HeapProfiler.collectGarbage, so figures include garbage not yet collected.)
	const probe = { usage: () => send("Runtime.getHeapUsage"), close: () => ws.close() };
	if (!(await probe.usage())) {
		log("no isolate heap figures: the inspector did not answer Runtime.getHeapUsage");
		ws.close();
		return none;
	}
	return probe;
}

function freePort() {
	return new Promise((resolve, reject) => {
		const server = createServer();
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address();
			server.close(() => resolve(port));
		});
		server.on("error", reject);
	});
}

function mfVersion() {
	try {
		return JSON.parse(readFileSync(join(root, "node_modules/miniflare/package.json"), "utf8")).version;
	} catch {
		return "?";
	}
}

function parseArgs(argv) {
	const options = { pieces: 100_000, spread: 60, delays: "auto", latency: null, keep: false, quiet: false, arrivals: true };
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i];
		const [name, inline] = arg.split("=", 2);
		const value = () => inline ?? argv[++i];
		if (name === "--pieces") options.pieces = Number(value());
		else if (name === "--spread") options.spread = Number(value());
		else if (name === "--delays") options.delays = value();
		else if (name === "--latency") options.latency = latencyOption(value());
		else if (name === "--keep") options.keep = true;
		else if (name === "--quiet") options.quiet = true;
		else if (name === "--no-arrivals") options.arrivals = false;
		else usage(`unknown option ${arg}`);
	}
	if (!Number.isInteger(options.pieces) || options.pieces < 1 || options.pieces > 1_000_000) usage("--pieces must be a whole number from 1 to 1,000,000");
	if (!["auto", "on", "off"].includes(options.delays)) usage("--delays must be auto, on or off");
	if (!Number.isInteger(options.spread) || options.spread < 0 || options.spread > 60) usage("--spread must be a whole number of seconds from 0 to 60");
	return options;
}

/** `MEDIAN:P99` in ms: a log-normal with mu = ln(median), sigma = ln(p99 / median) / 2.326 (as bench/latency.ts). */
function latencyOption(text) {
	const m = /^(\d+):(\d+)$/.exec(text ?? "");
	const medianMs = Number(m?.[1]);
	const p99Ms = Number(m?.[2]);
	if (!m || !(medianMs > 0) || !(p99Ms >= medianMs)) usage("--latency must be MEDIAN:P99 in whole ms, 0 < MEDIAN ≤ P99 (e.g. 2000:30000)");
	return { text, medianMs, p99Ms, mu: Math.log(medianMs), sigma: Math.log(p99Ms / medianMs) / 2.326 };
}

function usage(problem) {
	console.error(`npm run bench: ${problem}\nusage: npm run bench [-- --pieces N] [--spread S] [--delays auto|on|off] [--latency MEDIAN:P99] [--keep] [--quiet] [--no-arrivals]`);
	process.exit(2);
}

function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, ms));
}
function mb(kb) {
	return kb ? Math.round((kb / 1024) * 10) / 10 : null;
}
function round1(x) {
	return x === null || x === undefined ? null : Math.round(x * 10) / 10;
}
function fmt(x, digits = 0) {
	return x === null || x === undefined || Number.isNaN(x) ? "n/a" : Number(x).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
function clock() {
	return `${((Date.now() - started) / 1000).toFixed(1)}s`;
}
