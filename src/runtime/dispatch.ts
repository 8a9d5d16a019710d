import { serviceIdentity } from "../identity/service";
import { classifyDispatch, type DispatchVerdict } from "../policy/acks";
import { misconfigured, probeVerdict, type ProbeResult } from "../policy/outcome";
import type { RunMessage } from "../schema";
import { probeBody } from "./protocol";
import { MAX_V2_BODY_BYTES, PROTOCOL_V2, type DispatchBody, type DispatchedRun } from "./protocol-v2";
import { runBody, runTimeoutMs, serviceDid, signedPost, type RuntimeEnv } from "./client";
import { issueTicket } from "./ticket";

/** The bindings a protocol 2 dispatch needs besides the runtime's. */
export type DispatchEnv = RuntimeEnv & Partial<Pick<Env, "RUNTIME_PROTOCOL" | "REPORT_URL">>;

/** The v2 runs endpoint behind a RUNTIME service binding. */
export const DISPATCH_BINDING_PATH = "/v2/runs";

/**
 * How long a runtime has to acknowledge a dispatch (or the run timeout, if that is shorter).
 * It only verifies and takes the runs, so this is short; silence before the acknowledgement is
 * an outage, never a piece's failure.
 */
export const ACK_TIMEOUT_MS = 10_000;

/** The acknowledgement timeout for these settings. */
export function ackTimeoutMs(env: Pick<Env, "RUNTIME_TIMEOUT_MS">): number {
	return Math.min(ACK_TIMEOUT_MS, runTimeoutMs(env));
}

/** The protocol the runtime speaks, from RUNTIME_PROTOCOL: "2", or else "1". */
export function runtimeProtocol(env: Partial<Pick<Env, "RUNTIME_PROTOCOL">>): "1" | "2" {
	return env.RUNTIME_PROTOCOL?.trim() === PROTOCOL_V2 ? "2" : "1";
}

/** Where a v2 runtime reports (REPORT_URL), or why it cannot. */
export function reportTarget(env: Partial<Pick<Env, "REPORT_URL">>): { url: string } | { problem: string } {
	const url = URL.parse(env.REPORT_URL ?? "");
	if (!env.REPORT_URL) return { problem: "REPORT_URL is not set: a protocol 2 runtime needs the URL of this Worker's POST /api/runtime/reports" };
	if (!url || !/^https?:$/.test(url.protocol)) return { problem: "REPORT_URL is not an http(s) URL" };
	return { url: url.href };
}

/** One run to dispatch: its message and delivery attempt. */
export interface DispatchItem {
	message: RunMessage;
	attempt: number;
}

/**
 * Dispatches runs to a protocol 2 runtime in one signed request and classifies its
 * acknowledgement (src/policy/acks.ts). Each run carries a ticket sealing its message, which
 * the runtime returns in its report. One connection and one subrequest for up to 100 runs,
 * held for the acknowledgement only, however long the runs take. Never throws.
 */
export async function dispatchRuns(env: DispatchEnv, items: readonly DispatchItem[]): Promise<{ verdict: DispatchVerdict; durationMs: number }> {
	const report = reportTarget(env);
	if ("problem" in report) return { verdict: { kind: "unavailable", outcome: misconfigured(report.problem), retryAfterSeconds: null }, durationMs: 0 };
	let identity;
	try {
		identity = await serviceIdentity(env);
	} catch {
		return { verdict: { kind: "unavailable", outcome: misconfigured("the service identity is invalid: IDENTITY is not a PKCS#8 Ed25519 key"), retryAfterSeconds: null }, durationMs: 0 };
	}
	const timeoutMs = runTimeoutMs(env);
	const now = Date.now();
	const runs: DispatchedRun[] = await Promise.all(
		items.map(async ({ message, attempt }) => ({ ...runBody(message, attempt), ticket: await issueTicket(identity, message, attempt, now, timeoutMs) })),
	);
	return send(env, { runs, reportTo: report.url, timeoutMs }, runs.map((run) => run.runId));
}

/**
 * A protocol 2 liveness probe: a dispatch of one probe run (run nothing, report nothing). A
 * runtime that acknowledges it is alive; one that refuses it as a replay has a broken replay
 * store. Sent only to tell a duplicate from a broken store (src/policy/outcome.ts).
 */
export async function probeV2(env: DispatchEnv): Promise<ProbeResult> {
	const did = await serviceDid(env);
	if (!did) return { alive: false, reason: "the service identity is invalid" };
	const probe: DispatchedRun = { ...probeBody(did, Date.now()), ticket: "" };
	const report = reportTarget(env);
	const { verdict } = await send(env, { runs: [probe], reportTo: "url" in report ? report.url : "", timeoutMs: runTimeoutMs(env) }, [probe.runId]);
	if (verdict.kind === "unavailable") return { alive: false, reason: verdict.outcome.reason };
	return probeVerdict(verdict.outcomes.get(probe.runId) ?? { kind: "unavailable", reason: "the probe was not acknowledged" });
}

async function send(env: DispatchEnv, body: DispatchBody, runIds: string[]): Promise<{ verdict: DispatchVerdict; durationMs: number }> {
	const timeoutMs = ackTimeoutMs(env);
	// An acknowledgement of 100 runs, each with an error of up to 1,000 characters, is ≈ 110 KB:
	// read up to the protocol's 512 KB body limit (one dispatch at a time per invocation).
	const { exchange, durationMs } = await signedPost(env, body, { version: PROTOCOL_V2, kind: "bg-run-v2", timeoutMs, bindingPath: DISPATCH_BINDING_PATH, maxAnswerBytes: MAX_V2_BODY_BYTES });
	if (exchange.kind === "silent") {
		const reason = `no acknowledgement within ${timeoutMs} ms: the runtime took none of the ${runIds.length} runs`;
		return { verdict: { kind: "unavailable", outcome: { kind: "unavailable", reason }, retryAfterSeconds: null }, durationMs };
	}
	if (exchange.kind === "unreachable") return { verdict: { kind: "unavailable", outcome: exchange.outcome, retryAfterSeconds: null }, durationMs };
	return { verdict: classifyDispatch(exchange.status, exchange.text, exchange.version, exchange.retryAfter, runIds), durationMs };
}
