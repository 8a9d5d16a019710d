import { serviceIdentity } from "../identity/service";
import { describe } from "../log";
import { classifyResponse, misconfigured, probeVerdict, unreachable, type Outcome, type ProbeResult, type Unavailable } from "../policy/outcome";
import type { RunMessage } from "../schema";
import { HEADERS, PROTOCOL_VERSION, probeBody, utf8, type RunRequestBody, type SignedKind } from "./protocol";
import { readUpTo } from "../util/stream";
import { signedHeaders } from "./sign";

/** The bindings a run needs. */
export type RuntimeEnv = Pick<Env, "RUNTIME" | "PIECE_RUNTIME_URL" | "RUNTIME_TIMEOUT_MS" | "IDENTITY" | "OPERATOR_PASS">;

/** The run endpoint behind a RUNTIME service binding (the host is not used by bindings). */
export const SERVICE_BINDING_URL = "https://runtime.internal/v1/run";

/** A protocol 1 run's outcome (which is never `accepted`) and how long the runtime took. */
export interface RunResult {
	outcome: Exclude<Outcome, { kind: "accepted" }>;
	durationMs: number;
}

/** How much of a runtime's answer is read. */
export const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * The default per-run timeout: 10 minutes, the replaced service's effective limit. Real
 * bgUpdaters sync mailboxes and feeds; a shorter default would disable pieces that were
 * merely slow, and a runtime that is silent is told apart by the liveness probe anyway.
 */
export const DEFAULT_TIMEOUT_MS = 10 * 60_000;

/**
 * The longest per-run timeout: a consumer invocation may run 15 minutes (wall), and a run
 * must end, be probed and be recorded inside it (see batchBudgetMs in src/consumer.ts).
 */
export const MAX_TIMEOUT_MS = 12 * 60_000;

/** How long a liveness probe may take: a runtime answers one without running anything. */
export const PROBE_TIMEOUT_MS = 10_000;

/** The per-run timeout from RUNTIME_TIMEOUT_MS (at most MAX_TIMEOUT_MS), or the default. */
export function runTimeoutMs(env: Pick<Env, "RUNTIME_TIMEOUT_MS">): number {
	const value = Number(env.RUNTIME_TIMEOUT_MS);
	return Number.isFinite(value) && value > 0 ? Math.min(value, MAX_TIMEOUT_MS) : DEFAULT_TIMEOUT_MS;
}

/** A probe's timeout: PROBE_TIMEOUT_MS, or the run timeout if that is shorter (tests). */
export function probeTimeoutMs(env: Pick<Env, "RUNTIME_TIMEOUT_MS">): number {
	return Math.min(PROBE_TIMEOUT_MS, runTimeoutMs(env));
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
 * throws for anything the runtime does or for a misconfiguration: every answer, refusal or
 * missing setting becomes an Outcome (the last ones `unavailable`, so a bad setting disables
 * nothing), and no complete answer in time is `silent`, for the caller to probe.
 */
export async function runPiece(env: RuntimeEnv, message: RunMessage, attempt: number): Promise<RunResult> {
	return send(env, runBody(message, attempt), runTimeoutMs(env));
}

/** The protocol's body of one run: what the runtime needs of a queue message, `event` always `{}`. */
export function runBody(message: RunMessage, attempt: number): RunRequestBody {
	return {
		space: message.space,
		pieceId: message.pieceId,
		integration: message.integration,
		event: {},
		runId: message.runId,
		scheduledTime: message.scheduledTime,
		attempt,
	};
}

/**
 * Sends a liveness probe (src/runtime/protocol.ts, `probeBody`) and says whether a runtime
 * answered it. Costs one subrequest and at most PROBE_TIMEOUT_MS; sent only after a run got
 * no answer in time or a replay refusal, and one serves every such run of an invocation that
 * began before it (src/recorder.ts).
 */
export async function probeRuntime(env: RuntimeEnv): Promise<ProbeResult> {
	const did = await serviceDid(env);
	if (!did) return { alive: false, reason: "the service identity is invalid" };
	const { outcome } = await send(env, probeBody(did, Date.now()), probeTimeoutMs(env));
	return probeVerdict(outcome);
}

/** The service identity's did:key, or null if IDENTITY is not a valid key (never throws). */
export async function serviceDid(env: Pick<Env, "IDENTITY" | "OPERATOR_PASS">): Promise<string | null> {
	try {
		return (await serviceIdentity(env)).did;
	} catch {
		return null;
	}
}

/** What came back from one signed request: an answer, silence, or no connection. */
export type Exchange =
	| { kind: "answer"; status: number; version: string | null; text: string; retryAfter: string | null }
	| { kind: "silent"; timeoutMs: number }
	| { kind: "unreachable"; outcome: Unavailable };

/** How a signed request is sent: which protocol version and kind of message, and for how long. */
export interface Signing {
	version: string;
	kind: SignedKind;
	timeoutMs: number;
	/** The endpoint's path behind a service binding (a URL is taken as configured). */
	bindingPath?: string;
	/** How much of the answer is read: MAX_ANSWER_BYTES unless the protocol allows more. */
	maxAnswerBytes?: number;
}

/**
 * Signs `payload` with the service identity and POSTs it to the runtime, reading the answer
 * under `timeoutMs`. Never throws: a missing setting or a refused connection is `unreachable`
 * (with its outcome), no complete answer in time is `silent`.
 */
export async function signedPost(env: RuntimeEnv, payload: unknown, signing: Signing): Promise<{ exchange: Exchange; durationMs: number }> {
	const started = Date.now();
	const target = runtimeTarget(env);
	if (target.kind === "none") return { exchange: { kind: "unreachable", outcome: misconfigured(target.problem) }, durationMs: 0 };
	let identity;
	try {
		identity = await serviceIdentity(env);
	} catch {
		return { exchange: { kind: "unreachable", outcome: misconfigured("the service identity is invalid: IDENTITY is not a PKCS#8 Ed25519 key") }, durationMs: 0 };
	}
	const url = target.fetcher && signing.bindingPath ? new URL(signing.bindingPath, target.url) : target.url;
	const body = utf8(JSON.stringify(payload));
	const signal = AbortSignal.timeout(signing.timeoutMs);
	try {
		const headers = await signedHeaders(identity, "POST", url, body, started, signing.version, signing.kind);
		const init: RequestInit = { method: "POST", headers, body, signal, redirect: "manual" };
		const response = await (target.fetcher ? target.fetcher.fetch(url, init) : fetch(url, init));
		// The body is read under the same timeout (a runtime that sends headers and then stalls,
		// or drips bytes, is as silent as one that never answers), and only its first 64 KB: six
		// runs at once must fit in 128 MB whatever a wrong URL answers.
		const { bytes } = await readUpTo(response.body, signing.maxAnswerBytes ?? MAX_ANSWER_BYTES, signal);
		const exchange: Exchange = {
			kind: "answer",
			status: response.status,
			version: response.headers.get(HEADERS.version),
			text: new TextDecoder().decode(bytes),
			retryAfter: response.headers.get("retry-after"),
		};
		return { exchange, durationMs: Date.now() - started };
	} catch (error) {
		const durationMs = Date.now() - started;
		if (signal.aborted) return { exchange: { kind: "silent", timeoutMs: signing.timeoutMs }, durationMs };
		// Name the endpoint: "Network connection lost." alone does not say a connection to what was refused.
		return { exchange: { kind: "unreachable", outcome: unreachable(`${url.origin}${url.pathname}: ${describe(error)}`) }, durationMs };
	}
}

/** Signs and sends one v1 run request, classifying the answer. */
async function send(env: RuntimeEnv, payload: RunRequestBody, timeoutMs: number): Promise<RunResult> {
	const { exchange, durationMs } = await signedPost(env, payload, { version: PROTOCOL_VERSION, kind: "bg-run-v1", timeoutMs });
	if (exchange.kind === "silent") return { outcome: { kind: "silent", timeoutMs }, durationMs };
	if (exchange.kind === "unreachable") return { outcome: exchange.outcome, durationMs };
	return { outcome: classifyResponse(exchange.status, exchange.text, exchange.version), durationMs };
}
