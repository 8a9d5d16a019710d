/**
 * BENCHMARK HARNESS ONLY: the Worker `npm run bench` (bench/run.mjs) runs in Miniflare. It
 * runs the product's real handlers (`handleScheduled`, `handleQueue`, and for protocol 2
 * `receiveReports` on POST /api/runtime/reports) or the naive baseline (bench/naive.ts) on
 * the real local bindings, each wrapped in counting proxies per invocation
 * (bench/counting.ts): KV get/put/list/delete, queue send/sendBatch and messages sent,
 * runtime fetches, subrequests open at once, runs in flight, and console calls (one Workers
 * Logs event each, bench/log-count.ts). Subrequests of an invocation = its KV operations +
 * queue calls + runtime fetches. Invocations are of three kinds: tick (and fan-out
 * hand-overs), consumer, report.
 *
 * Routes (for bench/run.mjs only, besides the product's report route):
 *   POST /bench/seed?from=&count=&tick=   writes pieces straight into KV (not counted)
 *   POST /bench/design?design=current|naive   which design the next tick and consumers run
 *   POST /bench/tick?time=&design=        one tick run from a fetch (fallback; the bench
 *                                         normally fires the real scheduled() handler)
 *   GET  /bench/stats                     the counts so far
 *   POST /bench/reset-stats               zero the counts (and the runtime's)
 *   GET  /bench/runtime-stats             the bench runtime's counts (bench/runtime.ts)
 *   POST /bench/fail?share=               the share of pieces the bench runtime fails from now on
 *   GET  /bench/arrivals                  when each piece's runs reached the runtime (bench/arrivals.mjs)
 */
import { handleQueue } from "../src/consumer";
import { handleFanout, handleScheduled } from "../src/cron";
import { PLATFORM_LIMITS, type FanoutLimits } from "../src/fanout";
import { isFanoutQueue } from "../src/lanes";
import { LAST_TICK_KEY } from "../src/registry/keys";
import { receiveReports } from "../src/reports";
import { countingFetcher, countingKV, countingQueue, kvOps, live, roundRobinQueue, subrequests, zero, type Counts, type Live } from "./counting";
import { finishedRun, forgetRuns, runsOutstanding } from "./in-flight";
import { countConsoleCall, countingConsole } from "./log-count";
import { naiveQueue, naiveTick } from "./naive";
import { seed } from "./seed";

type Design = "current" | "naive";
type Kind = "tick" | "consumer" | "report";

/** The bench's own bindings besides the product's (bench/run.mjs sets them). */
interface BenchEnv extends Env {
	/** How many local queues carry the naive design's runs (1, or more under --latency). */
	BENCH_NAIVE_QUEUES?: string;
	/** "0": deliver runs while a tick is still fanning out, as production does (the arrival rig); else they wait, so the tick's CPU is its own. */
	BENCH_GATE_CONSUMERS?: string;
	/** Messages a second the fan-out paces (and plans) its sends at (the arrival rig: this instance's share of a lane's 4,500); unset: the product's own. */
	BENCH_SEND_PACE?: string;
}

/** Totals and per-invocation maxima of one kind of invocation. */
interface KindStats {
	invocations: number;
	totals: Counts;
	/** Sum of the invocations' wall times (ms), for the mean. */
	wallMs: number;
	maxKvOps: number;
	maxSubrequests: number;
	maxWallMs: number;
	/** The most subrequests one invocation had open at once (6 connections per invocation). */
	maxOpen: number;
	/** The most runs one invocation had dispatched and not yet finished at once (bench/in-flight.ts). */
	maxRunsInFlight: number;
	errors: number;
}

function kindStats(): KindStats {
	return { invocations: 0, totals: zero(), wallMs: 0, maxKvOps: 0, maxSubrequests: 0, maxWallMs: 0, maxOpen: 0, maxRunsInFlight: 0, errors: 0 };
}

let design: Design = "current";
/**
 * Whether messages' delaySeconds reach the local queue. Miniflare's queue broker holds each
 * delayed message on its own timer, and workerd allows an isolate 10,000 active timers, so
 * past ~10,000 delayed messages in flight its sendBatch fails ("Unknown Internal Error
 * (15000)", QuotaExceededError in the broker). Cloudflare's Queues have no such limit. For
 * large runs the bench records each planned delay but sends the message undelayed.
 */
let forwardDelays = true;
/**
 * Set while a tick runs. Consumer deliveries wait for it before they start (uncounted), so
 * the workerd CPU and the isolate heap measured during the tick are the tick's alone; in
 * production consumers run in other isolates anyway.
 */
let tickRunning: Promise<unknown> | null = null;
/** When the last tick started (ms). */
let tickStartedAt = 0;
let stats = freshStats();

function freshStats() {
	return {
		tick: kindStats(),
		consumer: kindStats(),
		report: kindStats(),
		/** Messages delivered to the consumer, and how each ended. */
		delivered: 0,
		acked: 0,
		retried: 0,
		/** Consumer invocations in flight right now. */
		inFlight: 0,
		/** Protocol 2 reports the Worker answered, by result status (recorded, dropped, …). */
		reports: {} as Record<string, number>,
		/** Report requests refused or failed (not 200). */
		reportRequestsFailed: 0,
		/** Protocol 2 runs dispatched and not yet reported. */
		runsOutstanding: 0,
		/** Messages sent, per second of their delaySeconds: the spread as the design plans it. */
		delayHistogram: {} as Record<number, number>,
		/**
		 * Messages sent, per second (since the tick started) at which they become deliverable:
		 * send time + delaySeconds. Includes the time the fan-out takes to send them.
		 */
		arrivalHistogram: {} as Record<number, number>,
		lastTickSummary: null as unknown,
		logLines: 0,
		errorLines: 0,
		/** Console calls outside any counted invocation (the bench's own routes). */
		uncountedConsoleCalls: 0,
		lastErrors: [] as string[],
	};
}

// The handlers log JSON lines; 100,000 runs would flood the bench's output. Count the lines
// (per invocation kind, for the Workers Logs price) instead, and keep the last few errors.
console.log = () => {
	stats.logLines++;
	if (!countConsoleCall()) stats.uncountedConsoleCalls++;
};
console.error = (...args: unknown[]) => {
	stats.errorLines++;
	if (!countConsoleCall()) stats.uncountedConsoleCalls++;
	stats.lastErrors.push(args.map(String).join(" ").slice(0, 500));
	if (stats.lastErrors.length > 10) stats.lastErrors.shift();
};

function plan(delaySeconds: number | undefined): void {
	const d = delaySeconds ?? 0;
	stats.delayHistogram[d] = (stats.delayHistogram[d] ?? 0) + 1;
	// workerd's clock advances with I/O and timers, so this is the send's time to the second.
	const at = Math.floor((Date.now() - tickStartedAt) / 1000 + d);
	stats.arrivalHistogram[at] = (stats.arrivalHistogram[at] ?? 0) + 1;
}

/** The naive design's run queue: RUNS, or RUNS and BENCH_RUNS_1… in turn (bench/counting.ts, roundRobinQueue). */
function naiveRuns(env: BenchEnv): Queue {
	const n = Number(env.BENCH_NAIVE_QUEUES) || 1;
	if (n <= 1) return env.RUNS;
	const extra = Array.from({ length: n - 1 }, (_, i) => (env as unknown as Record<string, Queue>)[`BENCH_RUNS_${i + 1}`]!);
	return roundRobinQueue([env.RUNS, ...extra]);
}

/** The env with counting bindings, for one invocation. */
function counted(env: BenchEnv, c: Counts, l: Live): Env {
	const runs = design === "naive" ? naiveRuns(env) : env.RUNS;
	return {
		...env,
		REGISTRY: countingKV(env.REGISTRY, c, l),
		RUNS: countingQueue(runs, c, l, plan, forwardDelays),
		FANOUT: countingQueue(env.FANOUT, c, l, plan, forwardDelays),
		RUNTIME: countingFetcher(env.RUNTIME, c, l),
	};
}

/** Runs one invocation with fresh counters and folds them into the kind's stats. */
async function invocation<T>(kind: Kind, env: BenchEnv, body: (env: Env) => Promise<T>): Promise<T> {
	const c = zero();
	const l = live();
	const s = stats[kind];
	const started = Date.now();
	try {
		return await countingConsole(c, () => body(counted(env, c, l)));
	} catch (error) {
		s.errors++;
		throw error;
	} finally {
		const wall = Date.now() - started;
		s.invocations++;
		for (const k of Object.keys(c) as (keyof Counts)[]) s.totals[k] += c[k];
		s.wallMs += wall;
		s.maxKvOps = Math.max(s.maxKvOps, kvOps(c));
		s.maxSubrequests = Math.max(s.maxSubrequests, subrequests(c));
		s.maxWallMs = Math.max(s.maxWallMs, wall);
		s.maxOpen = Math.max(s.maxOpen, l.openMax);
		s.maxRunsInFlight = Math.max(s.maxRunsInFlight, l.runsMax);
	}
}

/** POST /api/runtime/reports: the product's receiveReports, counted as a "report" invocation. */
async function report(request: Request, env: BenchEnv): Promise<Response> {
	const response = await invocation("report", env, (e) => receiveReports(request, e));
	// Read outside the counts: which runs finished, and what the Worker made of each.
	const { results } = ((await response.clone().json().catch(() => ({}))) as { results?: { runId: string; status: string }[] });
	if (!response.ok || !results) stats.reportRequestsFailed++;
	for (const r of results ?? []) {
		finishedRun(r.runId);
		stats.reports[r.status] = (stats.reports[r.status] ?? 0) + 1;
	}
	return response;
}

/**
 * The fan-out's limits: the platform's, with the arrival rig's pace (BENCH_SEND_PACE) in
 * place of a lane's 4,500 messages a second, so each instance plans and paces its shards as
 * its share of one lane.
 */
function limitsOf(env: BenchEnv): FanoutLimits {
	const pace = Number(env.BENCH_SEND_PACE);
	return pace > 0 ? { ...PLATFORM_LIMITS, maxMessagesPerSecond: pace } : PLATFORM_LIMITS;
}

async function tick(env: BenchEnv, time: number, which: Design): Promise<unknown> {
	tickStartedAt = Date.now();
	const running = invocation("tick", env, async (e) => {
		if (which === "naive") return naiveTick(e, time);
		await handleScheduled({ scheduledTime: time, cron: "* * * * *", noRetry() {} } as ScheduledController, e, limitsOf(env));
		return null;
	});
	tickRunning = running.catch(() => {});
	return running.then(async (summary) => {
		tickRunning = null;
		// The current design records its own summary in KV; read it outside the counts.
		stats.lastTickSummary = summary ?? (await env.REGISTRY.get(LAST_TICK_KEY, "json"));
		return stats.lastTickSummary;
	});
}

/** Wraps a batch so acks and retries are counted (a message neither acked nor retried is acked). */
function countingBatch(batch: MessageBatch<unknown>) {
	let retried = 0;
	const seen = new Set<string>();
	const messages = batch.messages.map((m) => ({
		id: m.id,
		timestamp: m.timestamp,
		body: m.body,
		attempts: m.attempts,
		ack: () => m.ack(),
		retry: (options?: QueueRetryOptions) => {
			if (!seen.has(m.id)) (seen.add(m.id), retried++);
			m.retry(options);
		},
	}));
	const wrapped = {
		queue: batch.queue,
		messages,
		ackAll: () => batch.ackAll(),
		retryAll: (options?: QueueRetryOptions) => {
			retried = messages.length;
			batch.retryAll(options);
		},
	} as unknown as MessageBatch<unknown>;
	return { wrapped, retried: () => retried };
}

export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const q = (name: string) => url.searchParams.get(name) ?? "";
		const route = `${request.method} ${url.pathname}`;
		switch (route) {
			case "POST /api/runtime/reports":
				return report(request, env);
			case "POST /bench/seed":
				return Response.json({ seeded: await seed(env, Number(q("from")), Number(q("count")), Number(q("tick")), q("shards") ? new Set(q("shards").split(",").map(Number)) : undefined) });
			case "POST /bench/design":
				design = q("design") === "naive" ? "naive" : "current";
				forwardDelays = q("delays") !== "off";
				return Response.json({ design, forwardDelays });
			case "POST /bench/tick":
				design = q("design") === "naive" ? "naive" : "current";
				return Response.json({ summary: await tick(env, Number(q("time")), design) });
			case "GET /bench/stats":
				return Response.json({ design, forwardDelays, ...stats, runsOutstanding: runsOutstanding() });
			case "POST /bench/reset-stats":
				stats = freshStats();
				forgetRuns();
				await env.RUNTIME!.fetch("https://runtime.internal/reset", { method: "POST" });
				return Response.json({ ok: true });
			case "POST /bench/fail":
				return env.RUNTIME!.fetch(`https://runtime.internal/fail?share=${encodeURIComponent(q("share"))}`, { method: "POST" });
			case "GET /bench/arrivals":
				return env.RUNTIME!.fetch("https://runtime.internal/arrivals");
			case "GET /bench/runtime-stats":
				return env.RUNTIME!.fetch("https://runtime.internal/stats");
			default:
				return new Response("not found", { status: 404 });
		}
	},
	async scheduled(controller, env) {
		await tick(env, new Date(controller.scheduledTime).getTime(), design);
	},
	async queue(batch, env) {
		// A fan-out hand-over (a lane beyond one invocation's budget) is fan-out work: counted with the tick.
		if (isFanoutQueue(batch.queue)) return invocation("tick", env, (e) => handleFanout(batch, e, limitsOf(env)));
		if (tickRunning && env.BENCH_GATE_CONSUMERS !== "0") await tickRunning;
		const { wrapped, retried } = countingBatch(batch);
		stats.delivered += batch.messages.length;
		stats.inFlight++;
		let crashed = false;
		try {
			await invocation("consumer", env, (e) => (design === "naive" ? naiveQueue(wrapped, e) : handleQueue(wrapped, e)));
		} catch (error) {
			crashed = true;
			throw error;
		} finally {
			stats.inFlight--;
			const r = crashed ? batch.messages.length : retried();
			stats.retried += r;
			stats.acked += batch.messages.length - r;
		}
	},
} satisfies ExportedHandler<BenchEnv, unknown>;
