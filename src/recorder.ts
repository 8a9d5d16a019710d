import { logError, logEvent } from "./log";
import { record, type Finished } from "./policy/decide";
import type { Answer, ProbeResult } from "./policy/outcome";
import { healthAfter } from "./policy/runtime-health";
import type { RunEvent } from "./policy/schedule";
import type { PieceEntry } from "./registry/entry";
import { getEntry, getRuntimeHealth, isWriteRateLimited, putEntry, putRuntimeHealth, type RegistryEnv } from "./registry/store";
import type { RunMessage } from "./schema";

/*
 * Recording a run's answer: the I/O around `record` (src/policy/decide.ts), shared by the
 * queue consumer (protocol 1 answers, protocol 2 acknowledgements) and the report route
 * (protocol 2 outcomes). Read the entry when the decision asks, write what it returns, keep
 * the runtime's health, and log.
 */

/** What one invocation shares between its runs: liveness probes, one health update. */
export interface Invocation {
	/** A probe's verdict, sent no earlier than `since` (a run's start): one serves every run begun before it. */
	probe(since: number): Promise<ProbeResult>;
	healthNoted: boolean;
}

/** An invocation whose probe (sent only when needed) is `probe`. */
export function newInvocation(probe: () => Promise<ProbeResult>): Invocation {
	let last: { at: number; result: Promise<ProbeResult> } | null = null;
	return {
		probe(since) {
			// A verdict from before a run began says nothing of what happened during it.
			if (!last || last.at < since) last = { at: Date.now(), result: probe() };
			return last.result;
		},
		healthNoted: false,
	};
}

/** What became of a recorded answer. */
export type Recorded = { kind: "dropped"; reason: string } | { kind: "recorded"; event: RunEvent; error: string; entry: PieceEntry | null; retry: boolean };

/** Records one run's answer: reads and writes only as `record` decides. Throws on a KV fault (the caller retries). */
export async function recordAnswer(env: RegistryEnv, invocation: Invocation, message: RunMessage, answer: Answer, run: Omit<Finished, "now">): Promise<Recorded> {
	let current: PieceEntry | null | undefined;
	let recording = record(message, answer, { ...run, now: Date.now() }, current);
	if (recording.status === "read") {
		current = await getEntry(env, message);
		recording = record(message, answer, { ...run, now: Date.now() }, current);
	}
	if (recording.status === "drop") {
		logEvent("run-dropped", { reason: recording.reason, runId: message.runId, space: message.space, pieceId: message.pieceId });
		return { kind: "dropped", reason: recording.reason };
	}
	if (recording.status === "read") throw new Error("record asked to read twice");
	if (recording.write) await writeRun(env, recording.write, recording.event);
	await noteRuntimeHealth(env, invocation, recording.event, recording.error, current);
	if (recording.event === "disabled") logEvent("disable", { piece: `${message.space}/${message.pieceId}`, status: recording.write?.status });
	return { kind: "recorded", event: recording.event, error: recording.error, entry: recording.write ?? current ?? null, retry: recording.retry };
}

/** Writes a run's entry; a skip's history line is not worth a retry when KV refuses the rate. */
async function writeRun(env: RegistryEnv, entry: PieceEntry, event: RunEvent): Promise<void> {
	try {
		await putEntry(env, entry);
	} catch (error) {
		if (event === "skipped" && isWriteRateLimited(error)) return;
		throw error;
	}
}

/**
 * Keeps `meta/runtime` (health) up to date: read and written only when a run was unavailable
 * or a piece recovered from an outage, and at most once per invocation. Best effort: a
 * health record KV refuses (another consumer wrote it this second) is left to the next run.
 */
async function noteRuntimeHealth(env: RegistryEnv, invocation: Invocation, event: RunEvent, reason: string, entry: PieceEntry | null | undefined): Promise<void> {
	const recovered = event !== "unavailable" && (entry?.unavailableSince ?? 0) > 0;
	if (invocation.healthNoted || (event !== "unavailable" && !recovered)) return;
	invocation.healthNoted = true;
	try {
		const next = healthAfter(await getRuntimeHealth(env), event, reason, Date.now());
		if (next) await putRuntimeHealth(env, next);
	} catch (error) {
		// Many invocations see an outage begin in the same second; KV keeps the first write.
		if (!isWriteRateLimited(error)) logError("runtime-health-unrecorded", error);
	}
}

/** The replaced service's success line, which users watch for. */
export function successLine(message: Pick<RunMessage, "space" | "pieceId">): string {
	return `Successfully executed piece ${message.space}/${message.pieceId}`;
}

/**
 * Logs one recorded run as one log event (Workers Logs bills each): a success as the replaced
 * service's line, which users watch for, and nothing more, so a steady run costs one event at
 * most; any other outcome as a `run` event with its error, failures and duration.
 */
export function logRun(event: RunEvent, message: RunMessage, failures: number, durationMs: number, error: string): void {
	if (event === "success") return console.log(successLine(message));
	logEvent("run", { outcome: event, piece: `${message.space}/${message.pieceId}`, runId: message.runId, kind: message.kind, durationMs, failures, error });
}
