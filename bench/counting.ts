/**
 * BENCHMARK HARNESS ONLY: the counting proxies the bench Worker (bench/worker.ts) wraps
 * around each invocation's bindings. They count KV get/put/list/delete, queue send/sendBatch
 * calls and the messages they carried, and runtime fetches; and they track, per invocation,
 * how many subrequests are open at once (the 6-connection limit) and how many runs it has
 * dispatched and not yet seen finish (bench/in-flight.ts).
 */
import { dispatchedRuns, finishedRun, type RunsInFlight } from "./in-flight";

/** Platform operations of one invocation, summed over a kind of invocation. */
export interface Counts {
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
	/** console.log/console.error calls: one Workers Logs event each. */
	consoleCalls: number;
}

/** Zero counts. */
export function zero(): Counts {
	return { kvReads: 0, kvWrites: 0, kvLists: 0, kvDeletes: 0, queueCalls: 0, queueMessages: 0, queueMessagesFailed: 0, runtimeFetches: 0, consoleCalls: 0 };
}

/** KV operations (the 1,000 per invocation limit). */
export function kvOps(c: Counts): number {
	return c.kvReads + c.kvWrites + c.kvLists + c.kvDeletes;
}

/** Subrequests: KV operations + queue calls + runtime fetches (the 10,000 per invocation limit). */
export function subrequests(c: Counts): number {
	return kvOps(c) + c.queueCalls + c.runtimeFetches;
}

/** What one invocation holds open right now, with its maxima. */
export interface Live extends RunsInFlight {
	open: number;
	openMax: number;
}

/** A fresh Live for one invocation. */
export function live(): Live {
	return { open: 0, openMax: 0, runs: 0, runsMax: 0 };
}

/** Counts a subrequest as open until it settles. */
function held<T>(l: Live, request: Promise<T>): Promise<T> {
	l.open++;
	l.openMax = Math.max(l.openMax, l.open);
	const close = () => void l.open--;
	request.then(close, close);
	return request;
}

/** KV with every operation counted and held open until it settles. */
export function countingKV(kv: KVNamespace, c: Counts, l: Live): KVNamespace {
	const call = (name: keyof KVNamespace, count: () => void) => (...args: unknown[]) => (count(), held(l, (kv[name] as (...a: unknown[]) => Promise<unknown>).apply(kv, args)));
	const wrapped = {
		get: call("get", () => c.kvReads++),
		getWithMetadata: call("getWithMetadata", () => c.kvReads++),
		put: call("put", () => c.kvWrites++),
		list: call("list", () => c.kvLists++),
		delete: call("delete", () => c.kvDeletes++),
	};
	return wrapped as unknown as KVNamespace;
}

/** The bench's record of a message's planned delay, called once per message sent. */
export type Planner = (delaySeconds: number | undefined) => void;

/**
 * A queue producer with calls and messages counted. `forwardDelays` false records each
 * delay (`plan`) but sends the message undelayed (the local broker's timer limit).
 */
export function countingQueue(queue: Queue, c: Counts, l: Live, plan: Planner, forwardDelays: boolean): Queue {
	const settle = <T>(count: number, sent: Promise<T>) =>
		held(l, sent).then(
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

/**
 * Several local queues as one producer, each sendBatch to the next in turn. The local broker
 * delivers one batch per queue at a time where Cloudflare runs up to 250 consumer
 * invocations per queue, so runs that hold their invocation (the naive design under
 * --latency) need several local queues to drain in bounded time. Counting is unchanged.
 */
export function roundRobinQueue(queues: readonly Queue[]): Queue {
	let next = 0;
	const pick = () => queues[next++ % queues.length]!;
	const wrapped = {
		send: (body: unknown, options?: QueueSendOptions) => pick().send(body, options),
		sendBatch: (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) => pick().sendBatch(messages, options),
	};
	return wrapped as unknown as Queue;
}

/**
 * The runtime binding, counted. A protocol 1 run is in flight from its request until its
 * answer; a protocol 2 dispatch puts each of its runs in flight from the request until its
 * report reaches the Worker (or its ack says it was not taken), so the body and the ack are
 * read here (the harness's own CPU, inside the workerd upper bound).
 */
export function countingFetcher(fetcher: Fetcher | undefined, c: Counts, l: Live): Fetcher | undefined {
	if (!fetcher) return undefined;
	const wrapped = {
		fetch: (input: RequestInfo | URL, init?: RequestInit) => {
			c.runtimeFetches++;
			const path = new URL(input instanceof Request ? input.url : input).pathname;
			if (!path.startsWith("/v2/") || !(init?.body instanceof Uint8Array)) {
				l.runs++;
				l.runsMax = Math.max(l.runsMax, l.runs);
				const done = () => void l.runs--;
				const answered = held(l, fetcher.fetch(input, init));
				answered.then(done, done);
				return answered;
			}
			const { runs } = JSON.parse(new TextDecoder().decode(init.body)) as { runs: { runId: string; probe?: true }[] };
			const ids = runs.filter((r) => !r.probe).map((r) => r.runId);
			dispatchedRuns(l, ids);
			// The ack is read before the product sees the answer, inside the invocation: a
			// continuation left for after it ends would be cancelled by workerd.
			const answered = held(l, fetcher.fetch(input, init)).then(
				async (response) => {
					const acks = ((await response.clone().json().catch(() => null)) as { runs?: { runId: string; status: string }[] } | null)?.runs ?? [];
					const accepted = new Set(acks.filter((a) => a.status === "accepted").map((a) => a.runId));
					for (const id of ids) if (!accepted.has(id)) finishedRun(id);
					return response;
				},
				(error: unknown) => {
					ids.forEach(finishedRun);
					throw error;
				},
			);
			return answered;
		},
	};
	return wrapped as unknown as Fetcher;
}
