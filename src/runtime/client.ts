import { serviceIdentity } from "../identity/service";
import { describe } from "../log";
import { classifyResponse, timedOut, unreachable, type Outcome } from "../policy/outcome";
import type { RunMessage } from "../schema";
import type { RunRequestBody } from "./protocol";
import { signedHeaders } from "./sign";
import { utf8 } from "./protocol";

/** The bindings a run needs. */
export type RuntimeEnv = Pick<Env, "RUNTIME" | "PIECE_RUNTIME_URL" | "RUNTIME_TIMEOUT_MS" | "IDENTITY" | "OPERATOR_PASS">;

/** The run endpoint behind a RUNTIME service binding (the host is not used by bindings). */
export const SERVICE_BINDING_URL = "https://runtime.internal/v1/run";

/** A run's outcome and how long the runtime took. */
export interface RunResult {
	outcome: Outcome;
	durationMs: number;
}

/** The default per-run timeout, as the replaced service had it. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/** The per-run timeout from RUNTIME_TIMEOUT_MS, or the default if unset or invalid. */
export function runTimeoutMs(env: Pick<Env, "RUNTIME_TIMEOUT_MS">): number {
	const value = Number(env.RUNTIME_TIMEOUT_MS);
	return Number.isFinite(value) && value > 0 ? value : DEFAULT_TIMEOUT_MS;
}

/** Which runtime is configured: the service binding, a URL, or none. */
export function runtimeTarget(env: Pick<Env, "RUNTIME" | "PIECE_RUNTIME_URL">): { kind: "service-binding" | "url"; url: URL; fetcher: Fetcher | null } | null {
	if (env.RUNTIME) return { kind: "service-binding", url: new URL(SERVICE_BINDING_URL), fetcher: env.RUNTIME };
	if (env.PIECE_RUNTIME_URL) return { kind: "url", url: new URL(env.PIECE_RUNTIME_URL), fetcher: null };
	return null;
}

/**
 * Asks the runtime to run one piece's bgUpdater with `{}` and classifies the answer. Never
 * throws for anything the runtime does: every answer, silence or refusal becomes an Outcome.
 */
export async function runPiece(env: RuntimeEnv, message: RunMessage, attempt: number): Promise<RunResult> {
	const started = Date.now();
	const target = runtimeTarget(env);
	if (!target) return { outcome: unreachable("no runtime configured (set RUNTIME or PIECE_RUNTIME_URL)"), durationMs: 0 };

	const payload: RunRequestBody = {
		space: message.space,
		pieceId: message.pieceId,
		integration: message.integration,
		event: {},
		runId: message.runId,
		scheduledTime: message.scheduledTime,
		attempt,
	};
	const body = utf8(JSON.stringify(payload));
	const headers = await signedHeaders(await serviceIdentity(env), "POST", target.url, body, started);
	const timeoutMs = runTimeoutMs(env);
	const signal = AbortSignal.timeout(timeoutMs);
	const init: RequestInit = { method: "POST", headers, body, signal, redirect: "manual" };
	try {
		const response = await (target.fetcher ? target.fetcher.fetch(target.url, init) : fetch(target.url, init));
		// The body is read under the same timeout: a runtime that answers and then stalls still times out.
		const text = await response.text();
		return { outcome: classifyResponse(response.status, text), durationMs: Date.now() - started };
	} catch (error) {
		const durationMs = Date.now() - started;
		if (signal.aborted) return { outcome: timedOut(timeoutMs), durationMs };
		return { outcome: unreachable(describe(error)), durationMs };
	}
}
