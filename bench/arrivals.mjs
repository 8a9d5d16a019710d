#!/usr/bin/env node
// `npm run bench:arrivals [-- --pieces N] [--instances K] [--batch-timeout S] [--pace lane|free]`: the runtime's load with every run
// delivered at its real delaySeconds, at sizes one local queue broker cannot hold (it keeps
// ≈ 10,000 delayed messages per isolate: docs/performance.md). K Miniflare processes (default:
// one per 6,250 pieces, at most 16), each with the bench Worker (the product's real handlers)
// and the bench runtime, each holding a disjoint set of the registry's 16 shards, are ticked for
// the same two minutes, as the Cron Trigger ticks one deployment: at a whole minute T and at
// T + 60 s, through the real scheduled() entry point. Every run's arrival at its runtime is
// recorded per piece on the machine's one clock and merged. With --pace lane (the default) the
// instances' run queues together take the messages at one lane's pace (4,500 a second, as the
// product's fan-out paces a lane), so each tick's fan-out reaches each page at the same offset,
// as a deployment's does; --pace free lets them send as fast as the rig's CPU allows. It
// reports, from arrivals:
//   - peak / mean runs a second over 1 s, 5 s and 10 s windows (the mean over the two periods);
//   - lateness: arrival − due, where due = the tick + the piece's phase (SPREAD_SECONDS);
//   - period jitter: |time between a piece's two runs − 60 s|.
// It prints a table, then one JSON line. A harness, not the product: nothing of it is deployed.
import { rmSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildSync } from "esbuild";
import { Log, LogLevel, Miniflare, convertV4MiniflareOptions } from "miniflare";
import { RUNTIME_PASS, benchWorkers, buildBenchWorkers, shippedSettings } from "./rig.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, ".wrangler", "arrivals");
const SHARD_COUNT = 16;
/** One lane's fan-out pace, messages a second (src/fanout.ts PLATFORM_LIMITS.maxMessagesPerSecond). */
const LANE_PACE = 4_500;
const options = parse(process.argv.slice(2));
const PIECES = options.pieces;
// One shard's pieces per instance at most 6,250 at 100,000: under the broker's 10,000 timers.
const INSTANCES = options.instances ?? Math.min(SHARD_COUNT, Math.max(1, Math.ceil(PIECES / 6_250)));
const log = (...a) => console.error(`[arrivals ${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
const started = Date.now();

class StderrLog extends Log {
	log(message) {
		process.stderr.write(`${message}\n`);
	}
}

// The same bundles as `npm run bench`, and what wrangler.toml ships.
mkdirSync(out, { recursive: true });
buildBenchWorkers(root, out);
buildSync({ bundle: true, format: "esm", logLevel: "error", platform: "node", entryPoints: [join(root, "bench/arrival-stats.ts")], outfile: join(out, "stats.mjs") });
const { identityFromPassphrase, summarise: summariseArrivals } = await import(pathToFileURL(join(out, "stats.mjs")).href);
const SHIPPED = shippedSettings(root);
const BATCH = SHIPPED.batch.size;
const BATCH_TIMEOUT = options.batchTimeout ?? SHIPPED.batch.timeoutSeconds;
const SPREAD = SHIPPED.spreadSeconds;
const runtimeDid = (await identityFromPassphrase(RUNTIME_PASS)).did;

// Shards dealt round-robin to the instances: instance k holds shards k, k + K, k + 2K, …
const shardsOf = (k) => Array.from({ length: SHARD_COUNT }, (_, s) => s).filter((s) => s % INSTANCES === k);

log(`${PIECES} pieces over ${INSTANCES} Miniflare instances (batch ${BATCH}, batch timeout ${BATCH_TIMEOUT} s, spread ${SPREAD} s)`);
const instances = [];
try {
	for (let k = 0; k < INSTANCES; k++) instances.push(await startInstance(k));
	log("instances up; seeding…");
	// Seeded due now, ticked at the first whole minute after the seeding (and a settling pause):
	// the seeding's load never overlaps the measured ticks.
	const seededDue = Date.now();
	const seeded = await Promise.all(instances.map(async ({ mf, shards }) => {
		let n = 0;
		for (let from = 0; from < PIECES; from += 5_000) n += (await call(mf, "POST", `/bench/seed?from=${from}&count=${Math.min(5_000, PIECES - from)}&tick=${seededDue}&shards=${shards.join(",")}`)).seeded;
		return n;
	}));
	const total = seeded.reduce((a, b) => a + b, 0);
	if (total !== PIECES) throw new Error(`seeded ${total} of ${PIECES}`);
	const T = Math.ceil((Date.now() + 10_000) / 60_000) * 60_000;
	log(`seeded ${total} (${seeded.join(" + ")}); first tick at ${new Date(T).toISOString()}`);

	// Two ticks a minute apart, each fired in every instance at once, on the minute.
	for (const tick of [T, T + 60_000]) {
		await sleep(tick - Date.now());
		const lag = Date.now() - tick;
		await Promise.all(instances.map(async ({ mf }) => (await mf.getWorker("bench-worker")).scheduled({ scheduledTime: new Date(tick), cron: "* * * * *" })));
		log(`tick ${new Date(tick).toISOString()} fired ${lag} ms after the minute, fanned out in ${Date.now() - tick} ms`);
	}
	// The second tick's last runs are due by T + 60 s + SPREAD; wait for them, then a margin.
	const deadline = T + 60_000 + SPREAD * 1000 + 120_000;
	let arrivals;
	for (;;) {
		await sleep(5_000);
		arrivals = await collect();
		const runs = arrivals.reduce((a, [, times]) => a + times.length, 0);
		log(`${runs} of ${2 * PIECES} runs arrived`);
		if (runs >= 2 * PIECES || Date.now() > deadline) break;
	}
	const report = {
		pieces: PIECES,
		instances: INSTANCES,
		batch: { maxBatchSize: BATCH, maxBatchTimeoutSeconds: BATCH_TIMEOUT },
		spreadSeconds: SPREAD,
		// lane: the instances together send at one lane's pace, as a deployment's fan-out does; free: as fast as the rig can.
		pace: options.pace === "lane" ? { messagesPerSecond: LANE_PACE, perInstance: LANE_PACE / INSTANCES } : "free",
		...summariseArrivals(arrivals, { pieces: PIECES, ticks: [T, T + 60_000], spreadSeconds: SPREAD, periodMs: 60_000 }),
		benchSeconds: Math.round((Date.now() - started) / 1000),
	};
	printTable(report);
	console.log(JSON.stringify(report));
} finally {
	await Promise.all(instances.map(({ mf }) => mf.dispose().catch(() => {})));
	rmSync(join(out, "state"), { recursive: true, force: true });
}

/** One Miniflare process: the bench Worker (real handlers) and the bench runtime, on its own shards. */
async function startInstance(k) {
	const stateDir = join(out, "state", String(k));
	rmSync(stateDir, { recursive: true, force: true });
	const consumer = { maxBatchSize: BATCH, maxBatchTimeout: BATCH_TIMEOUT, maxRetries: 3 };
	const mf = new Miniflare(convertV4MiniflareOptions({
		host: "127.0.0.1",
		port: 0,
		telemetry: { enabled: false },
		cf: false,
		log: new StderrLog(LogLevel.WARN),
		// The local broker's delayed deliveries make workerd warn of promises resolved across request contexts: not printed.
		handleStructuredLogs: ({ message }) => void (message.includes("different request context") || process.stderr.write(`[${k}] ${message}\n`)),
		resourcePersistencePath: stateDir,
		workers: benchWorkers({
			out,
			settings: SHIPPED,
			runtimeDid,
			spreadSeconds: SPREAD,
			consumer,
			bindings: {
				// Runs are delivered while a tick still fans out, as in production.
				BENCH_GATE_CONSUMERS: "0",
				// --pace lane: this instance's share of one lane's pace (the product's 4,500 messages a second).
				...(options.pace === "lane" ? { BENCH_SEND_PACE: String(LANE_PACE / INSTANCES) } : {}),
			},
			runtimeBindings: { BENCH_RECORD_ARRIVALS: "1" },
		}),
	}));
	await mf.ready;
	return { mf, shards: shardsOf(k) };
}

/** Every piece's arrivals, from every instance: [piece, times[]]. */
async function collect() {
	const all = await Promise.all(instances.map(({ mf }) => call(mf, "GET", "/bench/arrivals")));
	return all.flatMap((byPiece) => Object.entries(byPiece));
}

function printTable(r) {
	const rows = [
		["pieces / Miniflare instances", `${r.pieces} / ${r.instances}`],
		["runs arrived (two ticks)", `${r.runs} of ${2 * r.pieces}${r.missing ? ` (${r.missing} missing)` : ""}`],
		["mean runs a second (over the two periods)", r.runtimeMeanRps],
		["peak runs a second: 1 s / 5 s / 10 s windows", `${r.peakRps["1s"]} / ${r.peakRps["5s"]} / ${r.peakRps["10s"]}`],
		["peak / mean: 1 s / 5 s / 10 s", `${r.peakToMean["1s"]} / ${r.peakToMean["5s"]} / ${r.peakToMean["10s"]}`],
		["lateness (arrival − due): p50 / p99", `${r.lateness.p50Ms} / ${r.lateness.p99Ms} ms`],
		["period jitter |Δ − 60 s|: p50 / p99", `${r.periodJitterMs.p50} / ${r.periodJitterMs.p99} ms`],
		[`diagnostic, each tick's first ${r.afterSettling.settleSeconds} s left out: peak / mean (1 s)`, r.afterSettling.peakToMean1s],
		[`diagnostic, pieces arriving after each tick's first ${r.afterSettling.settleSeconds} s: period jitter p50 / p99`, `${r.afterSettling.periodJitterMs.p50} / ${r.afterSettling.periodJitterMs.p99} ms (${r.afterSettling.periodJitterMs.pieces} pieces)`],
	];
	const w = Math.max(...rows.map(([a]) => a.length));
	console.log(`\nRuntime arrivals with real delaySeconds: ${r.pieces} pieces, ${r.instances} Miniflare instances, batch ${r.batch.maxBatchSize} / ${r.batch.maxBatchTimeoutSeconds} s, spread ${r.spreadSeconds} s, fan-out pace ${r.pace === "free" ? "free" : `one lane's ${r.pace.messagesPerSecond} a second`}\n`);
	for (const [a, b] of rows) console.log(`${a.padEnd(w)}  ${b}`);
	console.log("");
}

async function call(mf, method, path) {
	const response = await mf.dispatchFetch(`http://bench.local${path}`, { method });
	const text = await response.text();
	if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status} ${text.slice(0, 300)}`);
	return JSON.parse(text);
}

function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

function parse(argv) {
	const o = { pieces: 100_000, instances: undefined, batchTimeout: undefined, pace: "lane" };
	for (let i = 0; i < argv.length; i++) {
		if (argv[i] === "--pieces") o.pieces = Number(argv[++i]);
		else if (argv[i] === "--instances") o.instances = Number(argv[++i]);
		else if (argv[i] === "--batch-timeout") o.batchTimeout = Number(argv[++i]);
		else if (argv[i] === "--pace") o.pace = argv[++i];
		else throw new Error(`unknown option ${argv[i]} (--pieces N, --instances K, --batch-timeout S, --pace lane|free)`);
	}
	if (!Number.isInteger(o.pieces) || o.pieces < 1) throw new Error("--pieces must be a whole number");
	if (!["lane", "free"].includes(o.pace)) throw new Error("--pace must be lane or free");
	if (o.instances !== undefined && !(Number.isInteger(o.instances) && o.instances >= 1 && o.instances <= SHARD_COUNT)) throw new Error(`--instances must be 1 to ${SHARD_COUNT}`);
	return o;
}
