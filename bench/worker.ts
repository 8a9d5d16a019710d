/**
 * BENCHMARK HARNESS ONLY: the Worker `npm run bench` (bench/run.mjs) runs in Miniflare. It
 * runs the product's real handlers (`handleScheduled`, `handleQueue`) or the naive baseline
 * (bench/naive.ts) on the real local bindings, each wrapped in counting proxies per
 * invocation: KV get/put/list/delete, queue send/sendBatch and messages sent, runtime fetches.
 * Subrequests of an invocation = its KV operations + queue calls + runtime fetches.
 *
 * Routes (for bench/run.mjs only):
 *   POST /bench/seed?from=&count=&tick=   writes pieces straight into KV (not counted)
 *   POST /bench/design?design=current|naive   which design the next tick and consumers run
 *   POST /bench/tick?time=&design=        one tick run from a fetch (fallback; the bench
 *                                         normally fires the real scheduled() handler)
 *   GET  /bench/stats                     the counts so far
 *   POST /bench/reset-stats               zero the counts (and the runtime's)
 *   GET  /bench/runtime-stats             the instant runtime's arrival counts
 */
import { handleQueue } from "../src/consumer";
import { handleFanout, handleScheduled } from "../src/cron";
import { FANOUT_QUEUE } from "../src/lanes";
import { registered } from "../src/policy/schedule";
import type { PieceEntry } from "../src/registry/entry";
import { LAST_TICK_KEY, pieceKey } from "../src/registry/keys";
import { summarise } from "../src/registry/store";
import { forEachLimit } from "../src/util/limit";
import { naiveQueue, naiveTick } from "./naive";

type Design = "current" | "naive";

/** Platform operations of one invocation. */
interface Counts {
	kvReads: number;
	kvWrites: number;
	kvLists: number;
	kvDeletes: number;
	/** send/sendBatch calls, failed ones included (each is a subrequest). */
	queueCalls: number;
	/** Messages the queue accepted. */
	queueMessages: number;
	/** Messages of send/sendBatch calls that failed. */
	queueMessagesFailed: number;
	runtimeFetches: number;
}

function zero(): Counts {
	return { kvReads: 0, kvWrites: 0, kvLists: 0, kvDeletes: 0, queueCalls: 0, queueMessages: 0, queueMessagesFailed: 0, runtimeFetches: 0 };
}

function kvOps(c: Counts): number {
	return c.kvReads + c.kvWrites + c.kvLists + c.kvDeletes;
}

function subrequests(c: Counts): number {
	return kvOps(c) + c.queueCalls + c.runtimeFetches;
}

/** Totals and per-invocation maxima of one kind of invocation (tick or consumer). */
interface KindStats {
	invocations: number;
	totals: Counts;
	maxKvOps: number;
	maxSubrequests: number;
	maxWallMs: number;
	errors: number;
}

function kindStats(): KindStats {
	return { invocations: 0, totals: zero(), maxKvOps: 0, maxSubrequests: 0, maxWallMs: 0, errors: 0 };
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
		/** Messages delivered to the consumer, and how each ended. */
		delivered: 0,
		acked: 0,
		retried: 0,
		/** Consumer invocations in flight right now. */
		inFlight: 0,
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
		lastErrors: [] as string[],
	};
}

// The handlers log a JSON line per run; 100,000 runs would flood the bench's output. Count
// the lines instead, and keep the last few errors for the report.
console.log = () => void stats.logLines++;
console.error = (...args: unknown[]) => {
	stats.errorLines++;
	stats.lastErrors.push(args.map(String).join(" ").slice(0, 500));
	if (stats.lastErrors.length > 10) stats.lastErrors.shift();
};

function countingKV(kv: KVNamespace, c: Counts): KVNamespace {
	const wrapped = {
		get: (...args: unknown[]) => (c.kvReads++, (kv.get as (...a: unknown[]) => unknown)(...args)),
		getWithMetadata: (...args: unknown[]) => (c.kvReads++, (kv.getWithMetadata as (...a: unknown[]) => unknown)(...args)),
		put: (...args: unknown[]) => (c.kvWrites++, (kv.put as (...a: unknown[]) => unknown)(...args)),
		list: (...args: unknown[]) => (c.kvLists++, (kv.list as (...a: unknown[]) => unknown)(...args)),
		delete: (...args: unknown[]) => (c.kvDeletes++, (kv.delete as (...a: unknown[]) => unknown)(...args)),
	};
	return wrapped as unknown as KVNamespace;
}

function countingQueue(queue: Queue, c: Counts): Queue {
	const settle = <T>(count: number, sent: Promise<T>) =>
		sent.then(
			(result) => ((c.queueMessages += count), result),
			(error: unknown) => {
				c.queueMessagesFailed += count;
				throw error;
			},
		);
	const wrapped = {
		send: (body: unknown, options?: QueueSendOptions) => {
			c.queueCalls++;
			plan(options?.delaySeconds);
			return settle(1, queue.send(body, forwardDelays ? options : { ...options, delaySeconds: undefined }));
		},
		sendBatch: (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) => {
			const list = [...messages];
			c.queueCalls++;
			for (const m of list) plan(m.delaySeconds ?? options?.delaySeconds);
			const forwarded = forwardDelays ? list : list.map((m) => ({ ...m, delaySeconds: undefined }));
			return settle(list.length, queue.sendBatch(forwarded, forwardDelays ? options : { ...options, delaySeconds: undefined }));
		},
	};
	return wrapped as unknown as Queue;
}

function plan(delaySeconds: number | undefined): void {
	const d = delaySeconds ?? 0;
	stats.delayHistogram[d] = (stats.delayHistogram[d] ?? 0) + 1;
	// workerd's clock advances with I/O and timers, so this is the send's time to the second.
	const at = Math.floor((Date.now() - tickStartedAt) / 1000 + d);
	stats.arrivalHistogram[at] = (stats.arrivalHistogram[at] ?? 0) + 1;
}

function countingFetcher(fetcher: Fetcher | undefined, c: Counts): Fetcher | undefined {
	if (!fetcher) return undefined;
	const wrapped = {
		fetch: (...args: Parameters<Fetcher["fetch"]>) => (c.runtimeFetches++, fetcher.fetch(...args)),
	};
	return wrapped as unknown as Fetcher;
}

/** The env with counting bindings, for one invocation. */
function counted(env: Env, c: Counts): Env {
	return { ...env, REGISTRY: countingKV(env.REGISTRY, c), RUNS: countingQueue(env.RUNS, c), FANOUT: countingQueue(env.FANOUT, c), RUNTIME: countingFetcher(env.RUNTIME, c) };
}

/** Runs one invocation with fresh counters and folds them into the kind's stats. */
async function invocation<T>(kind: "tick" | "consumer", env: Env, body: (env: Env) => Promise<T>): Promise<T> {
	const c = zero();
	const s = stats[kind];
	const started = Date.now();
	try {
		return await body(counted(env, c));
	} catch (error) {
		s.errors++;
		throw error;
	} finally {
		s.invocations++;
		for (const k of Object.keys(c) as (keyof Counts)[]) s.totals[k] += c[k];
		s.maxKvOps = Math.max(s.maxKvOps, kvOps(c));
		s.maxSubrequests = Math.max(s.maxSubrequests, subrequests(c));
		s.maxWallMs = Math.max(s.maxWallMs, Date.now() - started);
	}
}

async function tick(env: Env, time: number, which: Design): Promise<unknown> {
	tickStartedAt = Date.now();
	const running = invocation("tick", env, async (e) => {
		if (which === "naive") return naiveTick(e, time);
		await handleScheduled({ scheduledTime: time, cron: "* * * * *", noRetry() {} } as ScheduledController, e);
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

/** The product's default HEARTBEAT_MINUTES: a steady piece records its lastRun once per this many runs. */
const HEARTBEAT_RUNS = 60;

function seedEntry(i: number, tickTime: number, seededAt: number): PieceEntry {
	const space = `did:key:z6Mk${base58Fixed(Math.floor(i / 100), 44)}`;
	const pieceId = `fid1:${base64urlFixed(i, 43)}`;
	const base = registered(null, { space, pieceId, integration: "bench" }, 1_000);
	// A steady piece, due at this tick. As in the steady state, one piece in 60 is at its lastRun
	// heartbeat (last recorded 61 minutes ago); the rest recorded theirs a moment ago.
	const heartbeatDue = i % HEARTBEAT_RUNS === 0;
	return {
		...base,
		status: "Success",
		lastRun: seededAt - (heartbeatDue ? (HEARTBEAT_RUNS + 1) * 60_000 : 30_000),
		nextRunAt: tickTime,
		lastRunId: `tick:${tickTime - 60_000}:${space}/${pieceId}`,
		lastDurationMs: 3,
	};
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function base58Fixed(n: number, length: number): string {
	return fixed(n, BASE58, length);
}
function base64urlFixed(n: number, length: number): string {
	return fixed(n, BASE64URL, length);
}
/** n in the alphabet, left-padded to `length`, with a scrambled tail so keys look random. */
function fixed(n: number, alphabet: string, length: number): string {
	let digits = "";
	let x = n;
	do {
		digits = alphabet[x % alphabet.length] + digits;
		x = Math.floor(x / alphabet.length);
	} while (x > 0);
	let tail = "";
	let h = (n + 1) * 2654435761;
	while (tail.length < length - digits.length) {
		h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
		tail += alphabet[h % alphabet.length];
	}
	// The digits lead, so keys of consecutive pieces stay distinct and sorted by index.
	return (digits.padStart(8, alphabet[0]) + tail).slice(0, length);
}

async function seed(env: Env, from: number, count: number, tickTime: number): Promise<number> {
	const seededAt = Date.now();
	const indices = Array.from({ length: count }, (_, k) => from + k);
	await forEachLimit(indices, 6, async (i) => {
		const entry = seedEntry(i, tickTime, seededAt);
		// As test/helpers.ts seedPiece: the full entry as the value, its summary as metadata.
		await env.REGISTRY.put(pieceKey(entry), JSON.stringify(entry), { metadata: summarise(entry) });
	});
	return count;
}

export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		const q = (name: string) => url.searchParams.get(name) ?? "";
		const route = `${request.method} ${url.pathname}`;
		switch (route) {
			case "POST /bench/seed":
				return Response.json({ seeded: await seed(env, Number(q("from")), Number(q("count")), Number(q("tick"))) });
			case "POST /bench/design":
				design = q("design") === "naive" ? "naive" : "current";
				forwardDelays = q("delays") !== "off";
				return Response.json({ design, forwardDelays });
			case "POST /bench/tick":
				design = q("design") === "naive" ? "naive" : "current";
				return Response.json({ summary: await tick(env, Number(q("time")), design) });
			case "GET /bench/stats":
				return Response.json({ design, forwardDelays, ...stats });
			case "POST /bench/reset-stats":
				stats = freshStats();
				await env.RUNTIME!.fetch("https://runtime.internal/reset", { method: "POST" });
				return Response.json({ ok: true });
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
		if (batch.queue === FANOUT_QUEUE) return invocation("tick", env, (e) => handleFanout(batch, e));
		if (tickRunning) await tickRunning;
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
} satisfies ExportedHandler<Env, unknown>;
