import { logError, logEvent } from "./log";
import { admit } from "./policy/decide";
import { getEntry } from "./registry/store";
import type { DispatchEnv } from "./runtime/dispatch";
import { firstIssue, runMessageSchema, type RunMessage } from "./schema";
import { realClock } from "./util/pace";

/*
 * What both queue consumers (protocol 1, src/consumer.ts; protocol 2, src/dispatch.ts) do with
 * a delivery before its run, and the retry settings they share.
 */

/** The bindings admission needs. */
export type DeliveryEnv = Pick<Env, "REGISTRY">;

/** The bindings the consumer needs. */
export type ConsumerEnv = Pick<Env, "REGISTRY" | "RUNTIME" | "PIECE_RUNTIME_URL" | "RUNTIME_TIMEOUT_MS" | "IDENTITY" | "OPERATOR_PASS"> &
	Partial<Pick<Env, "HEARTBEAT_MINUTES">> &
	DispatchEnv;

/**
 * Runs at once per invocation. Each run holds one connection at a time (KV read, runtime
 * call, KV write), and an invocation may hold 6 connections at once (a Workers limit).
 */
export const MAX_CONCURRENT_RUNS = 6;

/** Wait before retrying a run the runtime could not take. */
export const UNAVAILABLE_RETRY_SECONDS = 15;
/** Wait before retrying a message whose handling crashed. */
export const CRASH_RETRY_SECONDS = 10;
/**
 * A message validated and admitted (src/policy/decide.ts, `admit`), after any wait KV's write
 * interval asks for; or null, logged, when it is dropped.
 */
export async function admitted(body: unknown, attempts: number, env: DeliveryEnv): Promise<RunMessage | null> {
	const parsed = runMessageSchema.safeParse(body);
	if (!parsed.success) {
		// Retrying cannot fix a malformed message: drop it, loudly.
		logError("message-malformed", firstIssue(parsed.error, body), { body: JSON.stringify(body)?.slice(0, 300) });
		return null;
	}
	const message = parsed.data;
	let admission = admit(message, attempts, Date.now(), undefined);
	if (admission.status === "read") admission = admit(message, attempts, Date.now(), await getEntry(env, message));
	if (admission.status !== "run") {
		logEvent("run-dropped", { reason: admission.status === "drop" ? admission.reason : "not admitted", runId: message.runId, space: message.space, pieceId: message.pieceId });
		return null;
	}
	await pauseUntil(admission.notBefore);
	return message;
}

/** Waits until `time` (ms), if it is still ahead. */
export async function pauseUntil(time: number): Promise<void> {
	const wait = time - Date.now();
	if (wait > 0) await realClock.sleep(wait);
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
