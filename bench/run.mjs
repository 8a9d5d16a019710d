#!/usr/bin/env node
// `npm run bench [-- --pieces N] [-- --spread S]`: the scheduler's cost and limits benchmark
// (issue 4, docs/performance.md). It seeds N steady pieces into real local KV (Miniflare),
// runs one tick and every run it dispatches through the real local Queue and the product's
// handlers against an instant runtime, counting every platform operation per invocation;
// then the same for the naive baseline (bench/naive.ts) on the same pieces. It prints a
// table, then as its last line one JSON object.
//
// Options:
//   --pieces N   pieces to seed (default 100000)
//   --spread S   SPREAD_SECONDS for the current design (default 60, as wrangler.toml);
//                a smaller value only shortens the wait for the delayed runs
//   --delays M   auto (default) | on | off: whether the current design's delaySeconds reach
//                the local queue. Miniflare's broker keeps one timer per delayed message and
//                workerd allows 10,000 active timers, so beyond ~9,000 pieces `auto` records
//                the planned delays but sends the messages undelayed (see docs/performance.md)
//   --keep       keep the Miniflare state in .wrangler/bench/state afterwards
//   --quiet      no progress lines on stderr
import { readFileSync, readdirSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildSync } from "esbuild";
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions } from "miniflare";

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
const started = Date.now();

// DESIGN.md §4 prices, in USD.
const PRICE = { kvRead: 0.5e-6, kvWriteDeleteList: 5e-6, queueOp: 0.4e-6, request: 0.3e-6, cpuMs: 0.02e-6 };
const LIMITS = { kvOps: 1000, subrequests: 10_000, memoryMb: 128, period: 60 };

// ---------------------------------------------------------------------------------------
// Build: the bench Worker, the instant runtime, and the fan-out for the Node CPU measurement.
mkdirSync(out, { recursive: true });
const common = { bundle: true, format: "esm", logLevel: "error", target: "es2022" };
const workerConditions = { platform: "browser", conditions: ["workerd", "worker", "browser"] };
buildSync({ ...common, ...workerConditions, entryPoints: [join(root, "bench/worker.ts")], outfile: join(out, "worker.mjs") });
buildSync({ ...common, ...workerConditions, entryPoints: [join(root, "bench/runtime.ts")], outfile: join(out, "runtime.mjs") });
buildSync({ ...common, platform: "node", entryPoints: [join(root, "bench/fanout-cpu.ts")], outfile: join(out, "fanout-cpu.mjs") });
const compatibilityDate = /^compatibility_date\s*=\s*"([^"]+)"/m.exec(readFileSync(join(root, "wrangler.toml"), "utf8"))?.[1] ?? "2026-08-22";

// A tick on a minute boundary; the seeded pieces ran one period before it.
const T = Math.floor(Date.now() / 60_000) * 60_000;

// ---------------------------------------------------------------------------------------
// 1. The fan-out's own CPU, in Node's V8 with in-memory bindings (no platform cost).
log(`fan-out CPU in Node over ${PIECES} in-memory pieces…`);
const { measureFanoutCpu } = await import(pathToFileURL(join(out, "fanout-cpu.mjs")).href);
const fanoutCpu = await measureFanoutCpu(PIECES, T);
log(`  ${fmt(fanoutCpu.cpuMs)} ms CPU, ${fmt((fanoutCpu.cpuMs * 1000) / PIECES, 2)} µs a piece`);

// ---------------------------------------------------------------------------------------
// 2. Miniflare: the bench Worker (real handlers, counting bindings), the instant runtime,
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
	resourcePersistencePath: stateDir,
	workers: [
		{
			name: "bench-worker",
			modules: true,
			scriptPath: join(out, "worker.mjs"),
			compatibilityDate,
			unsafeInspectorProxy: true,
			kvNamespaces: { REGISTRY: "bench-registry" },
			queueProducers: { RUNS: { queueName: "bg-piece-runs" }, FANOUT: { queueName: "bg-piece-fanout" } },
			// As wrangler.toml, except max_batch_timeout 1 s (the brief's bench setting).
			queueConsumers: {
				"bg-piece-runs": { maxBatchSize: 24, maxBatchTimeout: 1, maxRetries: 3 },
				"bg-piece-fanout": { maxBatchSize: 1, maxBatchTimeout: 0, maxRetries: 2 },
			},
			serviceBindings: { RUNTIME: "bench-runtime" },
			bindings: { SPREAD_SECONDS: String(SPREAD), RUNTIME_TIMEOUT_MS: "60000", OPERATOR_PASS: "bench", PIECE_RUNTIME_URL: "" },
		},
		{ name: "bench-runtime", modules: true, scriptPath: join(out, "runtime.mjs"), compatibilityDate },
	],
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

	// 5. Report.
	const report = {
		pieces: PIECES,
		...current.figures,
		spreadSeconds: SPREAD,
		delays: DELAYS,
		// The fan-out code alone (src/fanout.ts in Node's V8, in-memory bindings): CPU per piece.
		fanoutCpuUsPerPiece: Number(((fanoutCpu.cpuMs * 1000) / PIECES).toFixed(3)),
		fanoutCpuNode: { ...fanoutCpu, cpuMs: Number(fanoutCpu.cpuMs.toFixed(2)), wallMs: Number(fanoutCpu.wallMs.toFixed(2)) },
		baseline: naive.figures,
		benchSeconds: Math.round((Date.now() - started) / 1000),
	};
	printTable(report, current, naive);
	console.log(JSON.stringify(report));
} finally {
	await cleanup();
}

// ---------------------------------------------------------------------------------------

/** One design: reset the counts, fire one tick, wait for every run it dispatched. */
async function runDesign(design, tickTime) {
	await call("POST", "/bench/reset-stats");
	const delays = design === "current" ? DELAYS : "off";
	await call("POST", `/bench/design?design=${design}&delays=${delays}`);
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

	// Bounded wait: the spread, then the rig's throughput, and a stall cut-off.
	const deadline = Date.now() + (design === "current" ? SPREAD : 0) * 1000 + 120_000 + dispatched * 20;
	let lastProgress = { acked: -1, at: Date.now() };
	let lastLog = Date.now();
	let stats = afterTick;
	const runs = await phase(async () => {
		for (;;) {
			stats = await call("GET", "/bench/stats");
			if (stats.acked >= dispatched && stats.inFlight === 0) return "complete";
			if (stats.acked !== lastProgress.acked) lastProgress = { acked: stats.acked, at: Date.now() };
			const waitingForDelays = delays === "on" && Date.now() - fired < (SPREAD + 5) * 1000;
			if (!waitingForDelays && Date.now() - lastProgress.at > 60_000) return "stalled";
			if (Date.now() > deadline) return "deadline";
			if (Date.now() - lastLog >= 10_000) (lastLog = Date.now()), log(`${design}: ${stats.acked}/${dispatched} runs done`);
			await sleep(500);
		}
	});
	stats = await call("GET", "/bench/stats");
	const runtime = await call("GET", "/bench/runtime-stats");
	log(`${design}: runs ${runs.result} after ${fmt(runs.wallMs / 1000, 1)} s (${stats.acked} acked, ${stats.retried} retried, ${stats.errorLines} error lines)`);
	if (stats.errorLines) log(`${design}: last errors: ${stats.lastErrors.slice(-3).join(" | ")}`);
	return { design, tick, runs, stats, runtime, figures: { ...figures(design, fired, dispatched, tick, runs, stats, runtime), deliveryDelaysSimulated: delays === "on" } };
}

/** The per-run figures and the cost model of one design (`fired`: when the tick was fired). */
function figures(design, fired, dispatched, tick, runs, s, runtime) {
	const t = s.tick.totals;
	const c = s.consumer.totals;
	const per = (x) => (dispatched ? x / dispatched : 0);
	const kvReads = t.kvReads + c.kvReads;
	const kvWrites = t.kvWrites + c.kvWrites;
	const kvLists = t.kvLists + c.kvLists;
	const kvDeletes = t.kvDeletes + c.kvDeletes;
	const messages = t.queueMessages + c.queueMessages;
	const queueOps = 3 * messages + s.retried;
	const requests = s.tick.invocations + s.consumer.invocations;
	// CPU: workerd's whole process (also the local KV and Queue simulators and the runtime),
	// so an upper bound of the Worker's own CPU.
	const cpuMs = (tick.workerdCpuMs ?? 0) + (runs.workerdCpuMs ?? 0);
	const cost = {
		kvReads: per(kvReads) * PRICE.kvRead * 1e6,
		kvWritesDeletesLists: per(kvWrites + kvDeletes + kvLists) * PRICE.kvWriteDeleteList * 1e6,
		queues: per(queueOps) * PRICE.queueOp * 1e6,
		requests: per(requests) * PRICE.request * 1e6,
		cpu: per(cpuMs) * PRICE.cpuMs * 1e6,
	};
	const costPerMillionRunsUsd = Object.values(cost).reduce((a, b) => a + b, 0);

	// The runtime's load: arrivals per wall-clock second. The mean is over the period (60 s:
	// each piece runs once a minute) or over the arrivals' span if the rig took longer.
	const seconds = Object.entries(runtime.perSecond).map(([sec, n]) => [Number(sec), n]);
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
		runsCompleted: s.acked,
		runsStatus: runs.result,
		fanoutMs: tick.wallMs,
		fanoutMsPerPiece: r(per(tick.wallMs), 5),
		fanoutWorkerdCpuMs: tick.workerdCpuMs,
		fanoutWorkerdCpuMsPerPiece: tick.workerdCpuMs === null ? null : r(per(tick.workerdCpuMs), 5),
		queueMessagesPerRun: r(per(messages)),
		kvReadsPerRun: r(per(kvReads)),
		kvWritesPerRun: r(per(kvWrites)),
		kvListsPerRun: r(per(kvLists), 5),
		kvDeletesPerRun: r(per(kvDeletes)),
		queueOperationsPerRun: r(per(queueOps)),
		retries: s.retried,
		invocations: { tick: s.tick.invocations, consumer: s.consumer.invocations },
		kvOpsPerInvocationMax: Math.max(s.tick.maxKvOps, s.consumer.maxKvOps),
		subrequestsPerInvocationMax: Math.max(s.tick.maxSubrequests, s.consumer.maxSubrequests),
		perInvocationMax: {
			tick: { kvOps: s.tick.maxKvOps, subrequests: s.tick.maxSubrequests, wallMs: s.tick.maxWallMs },
			consumer: { kvOps: s.consumer.maxKvOps, subrequests: s.consumer.maxSubrequests, wallMs: s.consumer.maxWallMs },
		},
		workerdCpuMsPerRun: r(per(cpuMs)),
		costPerMillionRunsUsd: r(costPerMillionRunsUsd),
		costBreakdownPerMillionRunsUsd: Object.fromEntries(Object.entries(cost).map(([k, v]) => [k, r(v)])),
		runtimePeakRps: peak,
		runtimeMeanRps: r(runtime.total / spanSeconds, 2),
		runtimePeakToMean: runtime.total ? r((peak * spanSeconds) / runtime.total, 2) : null,
		runtimeRequests: runtime.total,
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
	};
}

function printTable(report, current, naive) {
	const a = current.figures;
	const b = naive.figures;
	const rows = [
		["pieces", PIECES, PIECES],
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
		["invocations (tick + consumer)", `${a.invocations.tick} + ${a.invocations.consumer}`, `${b.invocations.tick} + ${b.invocations.consumer}`],
		["max KV ops, one invocation (limit 1,000)", fmtMax(a.perInvocationMax, "kvOps"), fmtMax(b.perInvocationMax, "kvOps")],
		["max subrequests, one invocation (limit 10,000)", fmtMax(a.perInvocationMax, "subrequests"), fmtMax(b.perInvocationMax, "subrequests")],
		["workerd CPU per run (upper bound)", `${fmt(a.workerdCpuMsPerRun, 3)} ms`, `${fmt(b.workerdCpuMsPerRun, 3)} ms`],
		["cost per million runs", `$${fmt(a.costPerMillionRunsUsd, 2)}`, `$${fmt(b.costPerMillionRunsUsd, 2)}`],
		...Object.keys(a.costBreakdownPerMillionRunsUsd).map((k) => [`  of which ${k}`, `$${fmt(a.costBreakdownPerMillionRunsUsd[k], 3)}`, `$${fmt(b.costBreakdownPerMillionRunsUsd[k], 3)}`]),
		["runtime peak rps (measured)", a.runtimePeakRps, b.runtimePeakRps],
		["runtime mean rps (over max(60 s, drain))", a.runtimeMeanRps, b.runtimeMeanRps],
		["runtime peak / mean", `${a.runtimePeakToMean}${a.runtimeRateShowsDesign ? "" : " (not the design's: see below)"}`, `${b.runtimePeakToMean}${b.runtimeRateShowsDesign ? "" : " (not the design's: see below)"}`],
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
	console.log(`\nScheduler benchmark: ${PIECES} pieces, SPREAD_SECONDS ${SPREAD}, delaySeconds to the local queue: ${DELAYS}, Miniflare ${mfVersion()}\n`);
	console.log(line(["", "current", "naive (baseline)"]));
	for (const r of rows) console.log(line(r));
	if (!a.runtimeRateShowsDesign || !b.runtimeRateShowsDesign) {
		console.log(`\nA measured runtime rate marked "not the design's" shows the local rig, not the design: its delaySeconds did not reach the local queue (--delays off) or the rig, one consumer invocation at a time, took over 60 s to drain. The planned peak / mean (from each message's delaySeconds) is the design's profile.`);
	}
	console.log(`\nfanOut alone in Node: ${fmt(report.fanoutCpuNode.cpuMs)} ms CPU for ${PIECES} pieces; total bench time ${report.benchSeconds} s\n`);
}

function fmtMax(m, k) {
	return `tick ${m.tick[k]} / consumer ${m.consumer[k]}`;
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
	const options = { pieces: 100_000, spread: 60, delays: "auto", keep: false, quiet: false };
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i];
		const [name, inline] = arg.split("=", 2);
		const value = () => inline ?? argv[++i];
		if (name === "--pieces") options.pieces = Number(value());
		else if (name === "--spread") options.spread = Number(value());
		else if (name === "--delays") options.delays = value();
		else if (name === "--keep") options.keep = true;
		else if (name === "--quiet") options.quiet = true;
		else usage(`unknown option ${arg}`);
	}
	if (!Number.isInteger(options.pieces) || options.pieces < 1 || options.pieces > 1_000_000) usage("--pieces must be a whole number from 1 to 1,000,000");
	if (!["auto", "on", "off"].includes(options.delays)) usage("--delays must be auto, on or off");
	if (!Number.isInteger(options.spread) || options.spread < 0 || options.spread > 60) usage("--spread must be a whole number of seconds from 0 to 60");
	return options;
}

function usage(problem) {
	console.error(`npm run bench: ${problem}\nusage: npm run bench [-- --pieces N] [--spread S] [--delays auto|on|off] [--keep] [--quiet]`);
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
