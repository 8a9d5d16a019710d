import { serviceIdentity } from "../identity/service";
import { describe } from "../log";
import { classifyResponse, timedOut, unreachable, type Outcome } from "../policy/outcome";
import type { RunMessage } from "../schema";
import { HEADERS, PROTOCOL_VERSION, utf8, type RunRequestBody } from "./protocol";
import { readUpTo } from "../util/stream";
import { signedHeaders } from "./sign";

/** The bindings a run needs. */
export type RuntimeEnv = Pick<Env, "RUNTIME" | "PIECE_RUNTIME_URL" | "RUNTIME_TIMEOUT_MS" | "IDENTITY" | "OPERATOR_PASS">;

/** The run endpoint behind a RUNTIME service binding (the host is not used by bindings). */
export const SERVICE_BINDING_URL = "https://runtime.internal/v1/run";

/** A run's outcome and how long the runtime took. */
export interface RunResult {
	outcome: Outcome;
	durationMs: number;
}

/** How much of a runtime's answer is read. */
export const MAX_ANSWER_BYTES = 64 * 1024;

/** The default per-run timeout, as the replaced service had it. */
export const DEFAULT_TIMEOUT_MS = 60_000;

/** The per-run timeout from RUNTIME_TIMEOUT_MS, or the default if unset or invalid. */
export function runTimeoutMs(env: Pick<Env, "RUNTIME_TIMEOUT_MS">): number {
	const value = Number(env.RUNTIME_TIMEOUT_MS);
	return Number.isFinite(value) && value > 0 ? value : DEFAULT_TIMEOUT_MS;
}

/** Where runs go: the service binding, a URL, or nowhere (with the reason). */
export type RuntimeTarget = { kind: "service-binding" | "url"; url: URL; fetcher: Fetcher | null } | { kind: "none"; problem: string };

/** Which runtime is configured; a malformed PIECE_RUNTIME_URL is reported, not thrown. */
export function runtimeTarget(env: Pick<Env, "RUNTIME" | "PIECE_RUNTIME_URL">): RuntimeTarget {
	if (env.RUNTIME) return { kind: "service-binding", url: new URL(SERVICE_BINDING_URL), fetcher: env.RUNTIME };
	if (!env.PIECE_RUNTIME_URL) return { kind: "none", problem: "no runtime configured: set the RUNTIME service binding or PIECE_RUNTIME_URL" };
	const url = URL.parse(env.PIECE_RUNTIME_URL);
	if (!url || !/^https?:$/.test(url.protocol)) return { kind: "none", problem: "PIECE_RUNTIME_URL is not an http(s) URL" };
	return { kind: "url", url, fetcher: null };
}

/**
 * Asks the runtime to run one piece's bgUpdater with `{}` and classifies the answer. Never
 * throws for anything the runtime does or for a misconfiguration: every answer, silence,
 * refusal or missing setting becomes an Outcome (the last ones `unavailable`, so a bad
 * setting disables nothing).
 */
export async function runPiece(env: RuntimeEnv, message: RunMessage, attempt: number): Promise<RunResult> {
	const started = Date.now();
	const target = runtimeTarget(env);
	if (target.kind === "none") return { outcome: unreachable(target.problem), durationMs: 0 };
	let identity;
	try {
		identity = await serviceIdentity(env);
	} catch {
		return { outcome: unreachable("the service identity is invalid: IDENTITY is not a PKCS#8 Ed25519 key"), durationMs: 0 };
	}

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
	const headers = await signedHeaders(identity, "POST", target.url, body, started);
	const timeoutMs = runTimeoutMs(env);
	const signal = AbortSignal.timeout(timeoutMs);
	const init: RequestInit = { method: "POST", headers, body, signal, redirect: "manual" };
	try {
		const response = await (target.fetcher ? target.fetcher.fetch(target.url, init) : fetch(target.url, init));
		// The body is read under the same timeout (a runtime that answers and then stalls still
		// times out), and only its first 64 KB: six runs at once must fit in 128 MB whatever a
		// wrong URL answers. An error text is clipped far shorter anyway.
		const { bytes } = await readUpTo(response.body, MAX_ANSWER_BYTES);
		const text = new TextDecoder().decode(bytes);
		const fromRuntime = response.headers.get(HEADERS.version) === PROTOCOL_VERSION;
		return { outcome: classifyResponse(response.status, text, fromRuntime), durationMs: Date.now() - started };
	} catch (error) {
		const durationMs = Date.now() - started;
		if (signal.aborted) return { outcome: timedOut(timeoutMs), durationMs };
		return { outcome: unreachable(describe(error)), durationMs };
	}
}
