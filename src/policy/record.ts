import type { PieceSummary } from "../registry/entry";
import type { RunMessage } from "../schema";
import type { Outcome } from "./outcome";
import { PERIOD_MS } from "./schedule";

/*
 * Write on change (docs/kv-schema.md, "What a run writes"). A KV write costs ten times a read
 * and ≈ four times a run's three queue operations, so a run whose outcome changes nothing
 * writes nothing: the tick's message carries what the list metadata said about the piece,
 * and only a change of status, failures or enablement, or a due heartbeat, is recorded.
 */

/** Default interval of the `lastRun` heartbeat of a piece that keeps succeeding. */
export const DEFAULT_HEARTBEAT_MINUTES = 60;

/**
 * How often a steadily succeeding piece records its `lastRun`, from HEARTBEAT_MINUTES (1 to
 * 1,440; default 60). It bounds how far `lastRun` lags behind the last run, and sets the
 * steady cost: one write per HEARTBEAT_MINUTES runs ($5 per million writes ÷ 60 = $0.08 per
 * million runs at the default).
 */
export function heartbeatMs(value: string | undefined): number {
	const minutes = Number(value);
	const valid = value !== undefined && value !== "" && Number.isInteger(minutes) && minutes >= 1 && minutes <= 1440;
	return (valid ? minutes : DEFAULT_HEARTBEAT_MINUTES) * 60_000;
}

/** What a tick knew of a piece when it dispatched it (from the list metadata). */
export interface SeenState {
	/** The entry's updatedAt: a write newer than one second ago delays the run. */
	updatedAt: number;
	/** The last recorded success. */
	lastRun: number;
	/** The last run succeeded and nothing is pending: a success would change nothing but lastRun. */
	steady: boolean;
}

/** The tick's view of a listed piece, carried in its run message. */
export function seenState(piece: Pick<PieceSummary, "updatedAt" | "lastRun" | "status" | "failures">): SeenState {
	return { updatedAt: piece.updatedAt, lastRun: piece.lastRun, steady: piece.status === "Success" && piece.failures === 0 };
}

/**
 * How far a piece's recorded `lastRun` may lag behind its real last run, for the API and
 * dashboard: up to one heartbeat (plus the period) while an enabled piece keeps succeeding,
 * since those runs write nothing; otherwise 0, as every other outcome is written.
 */
export function lastRunMaxLagMs(piece: Pick<PieceSummary, "status" | "failures" | "disabledAt">, heartbeat: number): number {
	return piece.disabledAt === 0 && piece.status === "Success" && piece.failures === 0 ? heartbeat + PERIOD_MS : 0;
}

/**
 * Whether a run may skip reading the entry before it runs: the first delivery of a tick's run
 * of a steady piece. Everything else (registrations, run-nows, failing or new pieces, and a
 * retry, whose first attempt may have written a change) is checked against the stored entry
 * first, as rare runs can afford.
 */
export function trustsSnapshot(message: RunMessage, attempts = 1): boolean {
	return message.kind === "tick" && message.seen?.steady === true && attempts === 1;
}

/**
 * Whether a tick run's success would change nothing in the entry as stored now: it is
 * enabled, succeeding, and its lastRun is fresher than the heartbeat. The tick's listing can
 * be up to a minute behind KV, so a heartbeat it thinks due may have just been written.
 */
export function alreadyRecorded(entry: Pick<PieceSummary, "disabledAt" | "status" | "failures" | "lastRun">, now: number, heartbeat: number): boolean {
	return entry.disabledAt === 0 && entry.status === "Success" && entry.failures === 0 && now - entry.lastRun < heartbeat;
}

/**
 * Whether an outcome must be written: anything but the success of a steady piece whose
 * `lastRun` heartbeat is not yet due. An unavailable runtime changes the status, and so is
 * written (once: the next tick's message is no longer steady, and an unchanged entry is not
 * written again).
 */
export function mustRecord(message: RunMessage, outcome: Outcome, now: number, heartbeat: number, attempts = 1): boolean {
	if (!trustsSnapshot(message, attempts) || outcome.kind !== "ok") return true;
	return now - message.seen!.lastRun >= heartbeat;
}

/**
 * Whether a tick's message came so late that its piece's next tick message is due as well:
 * a full period after its own due time. Dropping it keeps a backlog from snowballing (each
 * late message would otherwise add a run) and keeps two runs of a piece from piling up.
 * Registrations and run-nows are one-offs with no successor, so they are never stale.
 */
export function isStale(message: RunMessage, now: number): boolean {
	if (message.kind !== "tick") return false;
	return now >= (message.dueAt ?? message.scheduledTime) + PERIOD_MS;
}
