/**
 * BENCHMARK HARNESS ONLY: how the bench runtime (bench/runtime.ts) reports protocol 2
 * outcomes, as the reference runtime does (dev/reference-runtime/v2.ts): reports gather until
 * MAX_BATCH_RUNS are waiting or FLUSH_MS has passed, then go out at most MAX_BATCH_RUNS to a
 * request (one Worker request and one log event on the scheduler per request), each signed with the
 * runtime's own key (`bg-report-v2`), over the service binding to the bench Worker.
 */
import type { Identity } from "../src/identity/ed25519";
import { utf8 } from "../src/runtime/protocol";
import { MAX_BATCH_RUNS, PROTOCOL_V2, type RunReport } from "../src/runtime/protocol-v2";
import { signedHeaders } from "../src/runtime/sign";

/** How long reports gather at most before they are sent (a full batch goes at once). */
export const FLUSH_MS = 1000;
/** Tries per report request: the bench Worker answers 503 only on a fault of its own. */
const ATTEMPTS = 3;

/** What the outbox did, for the bench's stats. */
export interface OutboxCounts {
	/** Report requests answered 200. */
	requests: number;
	/** Reports in those requests. */
	reports: number;
	/** Report requests refused (4xx) or given up after ATTEMPTS. */
	failedRequests: number;
	lastFailure: string;
}

/** Report batching towards one scheduler. */
export class ReportOutbox {
	#pending: RunReport[] = [];
	#sending: Promise<void> | null = null;
	#flushNow: (() => void) | null = null;
	counts: OutboxCounts = { requests: 0, reports: 0, failedRequests: 0, lastFailure: "" };

	readonly #scheduler: Fetcher;
	readonly #key: () => Promise<Identity>;

	constructor(scheduler: Fetcher, key: () => Promise<Identity>) {
		this.#scheduler = scheduler;
		this.#key = key;
	}

	/**
	 * Queues a report to `reportTo` and resolves once the flush that carries it is done. The
	 * caller keeps its request alive (ctx.waitUntil) on this promise, so the first run of a
	 * flush keeps alive the context its flush timer belongs to.
	 */
	add(reportTo: string, report: RunReport): Promise<void> {
		this.#pending.push(report);
		if (!this.#sending) {
			const full = new Promise<void>((resolve) => (this.#flushNow = resolve));
			this.#sending = Promise.race([new Promise((resolve) => setTimeout(resolve, FLUSH_MS)), full]).then(async () => {
				this.#sending = null;
				const batch = this.#pending.splice(0);
				for (let i = 0; i < batch.length; i += MAX_BATCH_RUNS) await this.#deliver(reportTo, batch.slice(i, i + MAX_BATCH_RUNS));
			});
		}
		const sending = this.#sending;
		if (this.#pending.length >= MAX_BATCH_RUNS) this.#flushNow?.();
		return sending;
	}

	/** Forgets the counts (a pending flush still goes out). */
	reset(): void {
		this.counts = { requests: 0, reports: 0, failedRequests: 0, lastFailure: "" };
	}

	async #deliver(reportTo: string, reports: RunReport[]): Promise<void> {
		const url = new URL(reportTo);
		const body = utf8(JSON.stringify({ reports }));
		const key = await this.#key();
		for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
			try {
				// Signed afresh on each attempt: a report request is refused as a replay otherwise.
				const headers = await signedHeaders(key, "POST", url, body, Date.now(), PROTOCOL_V2, "bg-report-v2");
				const response = await this.#scheduler.fetch(url, { method: "POST", headers, body });
				const text = await response.text();
				if (response.ok) {
					this.counts.requests++;
					this.counts.reports += reports.length;
					return;
				}
				this.counts.lastFailure = `HTTP ${response.status}: ${text.slice(0, 200)}`;
				if (response.status < 500) break;
			} catch (error) {
				this.counts.lastFailure = String(error);
			}
			await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
		}
		this.counts.failedRequests++;
	}
}
