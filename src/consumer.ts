import { logError, logEvent } from "./log";
import { withRun } from "./policy/history";
import { alreadyRecorded, heartbeatMs, isStale, mustRecord, trustsSnapshot } from "./policy/record";
import { applyOutcome, type RunEvent } from "./policy/schedule";
import type { PieceEntry } from "./registry/entry";
import { KV_WRITE_INTERVAL_MS, getEntry, putEntry } from "./registry/store";
import { runPiece } from "./runtime/client";
import { firstIssue, runMessageSchema, type RunMessage } from "./schema";
import { forEachLimit } from "./util/limit";
import { realClock } from "./util/pace";

/** The bindings the consumer needs. */
export type ConsumerEnv = Pick<Env, "REGISTRY" | "RUNTIME" | "PIECE_RUNTIME_URL" | "RUNTIME_TIMEOUT_MS" | "IDENTITY" | "OPERATOR_PASS"> &
	Partial<Pick<Env, "HEARTBEAT_MINUTES">>;

/*
 * Per invocation, a batch of 24 (wrangler.toml) costs at most 24 × 3 = 72 KV operations (read,
 * re-read, write: the worst case, when every run changes its piece) and 24 runtime calls: far
 * inside 1,000 KV operations and 10,000 subrequests. Steady runs cost none.
 */

/**
 * Runs at once per invocation. Each run holds one connection at a time (KV read, runtime
 * call, KV write), and an invocation may hold 6 connections at once (DESIGN §4).
 */
export const MAX_CONCURRENT_RUNS = 6;

/**
 * How often a run is retried while the runtime is unavailable before it waits for the next
 * tick instead; the piece stays due, so the next tick dispatches it again. Kept below the
 * queue's max_retries (3) so outages never fill the dead-letter queue.
 */
export const UNAVAILABLE_ATTEMPTS = 2;
/** Wait before retrying a run the runtime could not take. */
export const UNAVAILABLE_RETRY_SECONDS = 15;
/**
 * A consumer invocation may run 15 minutes (wall). Runs of one piece go one after another, so
 * a batch of many run-nows for one piece could outlast that: no run starts after this budget;
 * the rest are retried at once. The budget leaves a full run timeout (60 s) and more to spare.
 */
export const BATCH_BUDGET_MS = 12 * 60_000;
/** Wait before retrying a message whose handling crashed. */
export const CRASH_RETRY_SECONDS = 10;

/** What became of one message. */
export type Disposition = "ran" | "retry" | "dropped";

/**
 * The queue consumer: handles each message on its own, acking or retrying it individually,
 * so one bad message never holds up or re-runs the rest of the batch. Messages for the same
 * piece run one after the other (in scheduledTime order), so a piece never runs twice at
 * once within a batch and a later message sees the earlier one's result.
 */
export async function handleQueue(batch: MessageBatch<unknown>, env: ConsumerEnv, now: () => number = Date.now): Promise<void> {
	const deadline = now() + BATCH_BUDGET_MS;
	await forEachLimit(groupByPiece(batch.messages), MAX_CONCURRENT_RUNS, async (group) => {
		let previousEnd = -Infinity;
		const handled = new Set<unknown>();
		for (const message of group) {
			// Past the budget, hand the rest back to the queue rather than outlive the invocation.
			if (now() > deadline) {
				message.retry({ delaySeconds: 0 });
				continue;
			}
			// The same run twice in one batch (a duplicate delivery, a tick fired twice): once.
			const runId = (message.body as Partial<RunMessage> | null)?.runId;
			if (runId !== undefined && handled.has(runId)) {
				logEvent("run-dropped", { reason: "already in this batch (duplicate delivery)", runId });
				message.ack();
				continue;
			}
			handled.add(runId);
			// Each run ends with a write of the piece's key: starting the next run of the same
			// piece a second after the last one ended keeps its writes a second apart.
			await pauseUntil(previousEnd + KV_WRITE_INTERVAL_MS);
			await handleDelivery(message, env);
			previousEnd = Date.now();
		}
	});
}

async function handleDelivery(message: Message<unknown>, env: ConsumerEnv): Promise<void> {
	try {
		const disposition = await handleMessage(message.body, message.attempts, env);
		if (disposition === "retry") message.retry({ delaySeconds: UNAVAILABLE_RETRY_SECONDS });
		else message.ack();
	} catch (error) {
		// A fault of ours (KV down, a bug): retry; after max_retries it rests in the DLQ
		// while the piece, still due, is dispatched again by the next tick.
		logError("run-crashed", error, { messageId: message.id, attempts: message.attempts });
		message.retry({ delaySeconds: CRASH_RETRY_SECONDS });
	}
}

/** Messages grouped by the piece they name (malformed ones alone), each group oldest first. */
export function groupByPiece<M extends { body: unknown }>(messages: readonly M[]): M[][] {
	const groups = new Map<string, M[]>();
	messages.forEach((message, index) => {
		const body = message.body as Partial<RunMessage> | null;
		const key = body && typeof body === "object" && typeof body.space === "string" && typeof body.pieceId === "string" ? `${body.space}/${body.pieceId}` : `#${index}`;
		groups.set(key, [...(groups.get(key) ?? []), message]);
	});
	const time = (m: M) => Number((m.body as Partial<RunMessage>).scheduledTime) || 0;
	return [...groups.values()].map((group) => group.sort((a, b) => time(a) - time(b)));
}

/**
 * Handles one message body: validate, check it is still wanted, run, record on change.
 * A tick's run of a steady piece trusts the tick's snapshot and touches KV only if its
 * outcome changes something (or the lastRun heartbeat is due): 0 reads and 0 writes for the
 * common case. Every other run reads the entry first and re-checks it before writing.
 */
export async function handleMessage(body: unknown, attempts: number, env: ConsumerEnv): Promise<Disposition> {
	const parsed = runMessageSchema.safeParse(body);
	if (!parsed.success) {
		// Retrying cannot fix a malformed message: drop it, loudly.
		logError("message-malformed", firstIssue(parsed.error, body), { body: JSON.stringify(body)?.slice(0, 300) });
		return "dropped";
	}
	const message = parsed.data;
	if (isStale(message, Date.now())) return dropped(message, "stale: its piece's next tick message is due");

	let before: PieceEntry | null = null;
	if (!trustsSnapshot(message, attempts)) {
		before = await getEntry(env, message);
		const reason = dropReason(before, message);
		if (!before || reason) return dropped(message, reason);
	}

	// A registration or admin change written this very second: let KV's write interval pass
	// before the run, so a write after it is accepted (waiting here, not between the re-read
	// and the write, keeps that read-modify-write window short).
	await pauseUntil((before?.updatedAt ?? message.seen?.updatedAt ?? 0) + KV_WRITE_INTERVAL_MS);
	const started = Date.now();
	const { outcome, durationMs } = await runPiece(env, message, attempts);
	if (outcome.kind === "duplicate") return dropped(message, "the runtime already has this run (duplicate delivery)");
	const heartbeat = heartbeatMs(env.HEARTBEAT_MINUTES);
	if (!mustRecord(message, outcome, Date.now(), heartbeat, attempts)) {
		report("success", message, 0, durationMs, "");
		return "ran";
	}

	// Read (again) and check (again): during the run the piece may have been deleted or
	// disabled (the operator's change wins), re-registered (the outcome applies to the new
	// entry), or a duplicate delivery handled elsewhere may have recorded this slot (its result
	// stands). A failure of a run that started before a re-registration (say, with the token
	// the OAuth reconnect replaced) says nothing about the piece as registered now.
	const current = await getEntry(env, message);
	const lateReason = dropReason(current, message) ?? (outcome.kind === "failed" && current && current.updatedAt > started ? "re-registered" : null);
	if (!current || lateReason) return dropped(message, `${lateReason} during the run`);
	const now = Date.now();
	if (message.kind === "tick" && outcome.kind === "ok" && alreadyRecorded(current, now, heartbeat)) {
		report("success", message, 0, durationMs, "");
		return "ran";
	}
	const { entry, event } = applyOutcome(current, outcome, { scheduledTime: message.scheduledTime, now, runId: message.runId, durationMs });
	const error = outcome.kind === "unavailable" ? outcome.reason : outcome.kind === "failed" ? outcome.error : "";
	// Written only if the outcome changed the entry; the run is then recorded in its history too.
	if (changed(current, entry)) await putEntry(env, withRun(entry, event, now, durationMs, error));
	report(event, message, entry.failures, durationMs, error || entry.lastError);
	if (event === "disabled") logEvent("disable", { piece: `${message.space}/${message.pieceId}`, status: entry.status });
	if (event === "unavailable") return attempts < UNAVAILABLE_ATTEMPTS ? "retry" : "dropped";
	return "ran";
}

function dropped(message: RunMessage, reason: string | null): Disposition {
	logEvent("run-dropped", { reason, runId: message.runId, space: message.space, pieceId: message.pieceId });
	return "dropped";
}

/** Why a message should not run, or null if it should. */
function dropReason(entry: PieceEntry | null, message: RunMessage): string | null {
	if (!entry) return "not registered";
	if (entry.disabledAt !== 0) return "disabled";
	if (entry.lastRunId === message.runId) return "already ran (duplicate delivery)";
	// A tick's (or registration's) message is stale once a run for its slot or a later one has
	// been recorded: a tick fired twice, or ten concurrent registrations, run the piece once.
	// Only an operator's run-now always runs.
	if (message.kind !== "manual" && entry.nextRunAt > message.scheduledTime) return "not due (stale or duplicate)";
	return null;
}

async function pauseUntil(time: number): Promise<void> {
	const wait = time - Date.now();
	if (wait > 0) await realClock.sleep(wait);
}

function changed(a: PieceEntry, b: PieceEntry): boolean {
	return JSON.stringify(a) !== JSON.stringify(b);
}

function report(event: RunEvent, message: RunMessage, failures: number, durationMs: number, error: string): void {
	const piece = `${message.space}/${message.pieceId}`;
	// The replaced service's line, which users watch for.
	if (event === "success") console.log(`Successfully executed piece ${piece}`);
	const fields = { outcome: event, piece, runId: message.runId, kind: message.kind, durationMs, failures };
	logEvent("run", event === "success" ? fields : { ...fields, error });
}
