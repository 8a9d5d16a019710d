import type { PieceEntry } from "../registry/entry";
import { KV_WRITE_INTERVAL_MS } from "../registry/keys";
import type { RunMessage } from "../schema";
import { withRun } from "./history";
import type { Answer, RunOutcome } from "./outcome";
import { alreadyRecorded, isStale, mustRecord, trustsSnapshot } from "./record";
import { applyOutcome, type RunEvent } from "./schedule";

/*
 * The consumer's decisions, as pure functions that return a tagged result; src/consumer.ts
 * is the straight line of I/O around them (read an entry when told to, run, write what is
 * returned). `entry` is `undefined` when it has not been read, `null` when it was read and
 * the piece is not registered.
 */

/** What to do with a message before its run. */
export type Admission = { status: "drop"; reason: string } | { status: "read" } | { status: "run"; notBefore: number };

/**
 * How often a run is retried while the runtime is unavailable before it waits for the next
 * tick instead; the piece stays due, so the next tick dispatches it again. Kept below the
 * queue's max_retries (3) so outages never fill the dead-letter queue.
 */
export const UNAVAILABLE_ATTEMPTS = 2;

/**
 * Before the run: drop a stale message; run a tick's steady piece on the tick's snapshot
 * (no KV read); read every other piece's entry first, and drop the message if the piece is
 * gone, disabled, or its slot already ran. `notBefore`: a registration or admin change
 * written this very second lets KV's write interval pass first, so the run's own write is
 * accepted (waiting here keeps the read-modify-write window after the run short).
 */
export function admit(message: RunMessage, attempts: number, now: number, entry: PieceEntry | null | undefined): Admission {
	if (isStale(message, now)) return { status: "drop", reason: "stale: its piece's next tick message is due" };
	if (entry === undefined) {
		if (!trustsSnapshot(message, attempts)) return { status: "read" };
		return { status: "run", notBefore: (message.seen?.updatedAt ?? 0) + KV_WRITE_INTERVAL_MS };
	}
	const reason = dropReason(entry, message);
	if (reason) return { status: "drop", reason };
	return { status: "run", notBefore: entry!.updatedAt + KV_WRITE_INTERVAL_MS };
}

/** What the run's outcome calls for, once it is known. */
export type Recording =
	| { status: "read" }
	| { status: "drop"; reason: string }
	| { status: "done"; event: RunEvent; error: string; write: PieceEntry | null; retry: boolean };

/** The context of a finished run. */
export interface Finished {
	attempts: number;
	/** When the run started and ended (ms). */
	started: number;
	now: number;
	durationMs: number;
	/** The lastRun heartbeat interval (src/policy/record.ts). */
	heartbeat: number;
}

/**
 * After the run: what to write, if anything. A tick's steady piece whose success changes
 * nothing writes nothing and reads nothing. Every other outcome is checked against the entry
 * as stored now (during the run the piece may have been deleted or disabled: the operator's
 * change wins; re-registered: a failure of a run that started before it says nothing about
 * the piece as registered now; or recorded by a duplicate delivery elsewhere: its result
 * stands), then written only if it changed the entry, with the run in its history.
 */
export function record(message: RunMessage, answer: Answer, run: Finished, current: PieceEntry | null | undefined): Recording {
	if (answer.kind === "ok" && !mustRecord(message, answer, run.now, run.heartbeat, run.attempts)) return done("success", "", null, false);
	// The runtime has this run already (it proved its replay store honest): our copy changes nothing.
	if (answer.kind === "duplicate") return { status: "drop", reason: "the runtime already has this run (duplicate delivery)" };
	if (current === undefined) return { status: "read" };
	const lateReason = dropReason(current, message) ?? (current ? laterChange(current, answer, run.started) : null);
	if (!current || lateReason) return { status: "drop", reason: `${lateReason} during the run` };

	if (answer.kind === "busy") {
		// Skip policy: the previous run is still going; this one is not started, counts nothing,
		// and shows in the history, once per run still going (a run of ten minutes is not ten
		// writes). The piece stays due.
		const error = `skipped: run ${answer.runningRunId} is still going (since ${timeText(answer.since, run.now)})`;
		const last = current.history?.at(-1);
		const noted = last?.outcome === "skipped" && last.skippedFor === answer.runningRunId;
		return done("skipped", error, noted ? null : withRun(current, "skipped", run.now, 0, error, answer.runningRunId), false);
	}
	const outcome: RunOutcome = answer;
	if (message.kind === "tick" && outcome.kind === "ok" && alreadyRecorded(current, run.now, run.heartbeat)) return done("success", "", null, false);

	const { entry, event } = applyOutcome(current, outcome, { scheduledTime: message.scheduledTime, now: run.now, runId: message.runId, durationMs: run.durationMs });
	const error = outcome.kind === "unavailable" ? outcome.reason : outcome.kind === "failed" ? outcome.error : "";
	const write = JSON.stringify(current) !== JSON.stringify(entry) ? withRun(entry, event, run.now, run.durationMs, error) : null;
	const retry = outcome.kind === "unavailable" && run.attempts < UNAVAILABLE_ATTEMPTS;
	return done(event, error || entry.lastError, write, retry);
}

/**
 * Why an outcome is too late to record, though the message was due: a run of the piece that
 * began later has been recorded already (a resent or reordered report, or an overlapping run
 * that finished first: the newer result stands), or, for a failure, the piece was
 * re-registered or changed by an admin after this run began (a failure with, say, the token an
 * OAuth reconnect replaced says nothing about the piece as it is now).
 */
function laterChange(current: PieceEntry, answer: Answer, started: number): string | null {
	if (Math.max(current.lastRun, current.lastFailureAt ?? 0) > started) return "a later run was recorded";
	if (answer.kind === "failed" && current.updatedAt > started) return "re-registered";
	return null;
}

/** A runtime-given time as ISO text, or "an unknown time" if it cannot be one (0, garbage, far future). */
function timeText(time: number, now: number): string {
	return Number.isFinite(time) && time > 0 && time <= now + 5 * 60_000 ? new Date(time).toISOString() : "an unknown time";
}

function done(event: RunEvent, error: string, write: PieceEntry | null, retry: boolean): Recording {
	return { status: "done", event, error, write, retry };
}

/** Why a message should not run (or its outcome not be recorded), or null if it should. */
export function dropReason(entry: PieceEntry | null, message: RunMessage): string | null {
	if (!entry) return "not registered";
	if (entry.disabledAt !== 0) return "disabled";
	if (entry.lastRunId === message.runId) return "already ran (duplicate delivery)";
	// A tick's (or registration's) message is stale once a run for its slot or a later one has
	// been recorded: a tick fired twice, or ten concurrent registrations, run the piece once.
	// Only an operator's run-now always runs.
	if (message.kind !== "manual" && entry.nextRunAt > message.scheduledTime) return "not due (stale or duplicate)";
	return null;
}
