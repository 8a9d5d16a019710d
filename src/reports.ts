import { serviceIdentity } from "./identity/service";
import { logError, logEvent } from "./log";
import { clip, type Answer } from "./policy/outcome";
import { heartbeatMs } from "./policy/record";
import type { Identity } from "./identity/ed25519";
import { newInvocation, recordAnswer, successLine, type Invocation } from "./recorder";
import type { RegistryEnv } from "./registry/store";
import { HEADERS } from "./runtime/protocol";
import { MAX_V2_BODY_BYTES, PROTOCOL_V2, type ReportResult, type RunReport } from "./runtime/protocol-v2";
import { readTicket } from "./runtime/ticket";
import { DEFAULT_MAX_SKEW_MS, verifyReport } from "./runtime/verify";
import { MAX_CONCURRENT_RUNS } from "./delivery";
import { forEachLimit } from "./util/limit";

/** The bindings the report route needs. */
export type ReportsEnv = RegistryEnv & Pick<Env, "IDENTITY" | "OPERATOR_PASS"> & Partial<Pick<Env, "RUNTIME_SIGNERS" | "HEARTBEAT_MINUTES">>;

/*
 * Per request: at most 100 reports (MAX_BATCH_RUNS), each costing at most a KV read and a
 * write (a steady success: none), plus the runtime's health (a read and a write, once):
 * ≤ 202 of the 1,000 KV operations, 6 at a time (6 connections per invocation).
 */

/** Report signatures seen within twice the skew window, per isolate, with their expiry. */
const seenReports = new Map<string, number>();

/**
 * Whether a report request's replay key was seen here before (and remember it). An isolate's
 * memory: a replay that reaches another isolate is not refused, but changes nothing either,
 * since a report is applied at most once per run (the entry's lastRunId, and a steady
 * success writes nothing), and a ticket expires.
 */
function seenBefore(key: string): boolean {
	const now = Date.now();
	// Keys expire in the order they were added: prune from the oldest, stopping at the first
	// still live, so a busy isolate pays for what expired, not for all it remembers.
	for (const [k, expires] of seenReports) {
		if (expires >= now) break;
		seenReports.delete(k);
	}
	if (seenReports.has(key)) return true;
	seenReports.set(key, now + 2 * DEFAULT_MAX_SKEW_MS);
	return false;
}

/** The runtimes allowed to report (RUNTIME_SIGNERS, comma-separated did:keys). */
export function runtimeSigners(env: Partial<Pick<Env, "RUNTIME_SIGNERS">>): string[] {
	return (env.RUNTIME_SIGNERS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}

const answer = (body: unknown, status: number, headers: Record<string, string> = {}) => Response.json(body, { status, headers: { [HEADERS.version]: PROTOCOL_V2, ...headers } });

/**
 * `POST /api/runtime/reports` (protocol 2): a runtime reports the outcomes of runs it
 * accepted. The request must be signed by an allowed runtime (RUNTIME_SIGNERS), fresh, and
 * not a replay (401 otherwise); each report must carry a ticket this scheduler issued and
 * that has not expired, or it changes nothing. A fault of ours (KV down) answers 503, and the
 * runtime sends the reports again: the ones already recorded are then dropped as duplicates.
 */
export async function receiveReports(request: Request, env: ReportsEnv): Promise<Response> {
	// A body announced past the limit is refused before anything is read or verified.
	if (Number(request.headers.get("content-length")) > MAX_V2_BODY_BYTES) return answer({ error: "body too large" }, 413);
	const verified = await verifyReport(request, { allowedSigners: runtimeSigners(env), seenBefore });
	if (!verified.ok) {
		logEvent("report-refused", { error: verified.error, signer: (request.headers.get(HEADERS.signer) ?? "").slice(0, 120) });
		return answer({ error: verified.error }, 401);
	}
	const context: Context = {
		env,
		identity: await serviceIdentity(env),
		// Reports carry ok or failed only: nothing is ever probed here.
		invocation: newInvocation(() => Promise.reject(new Error("a report is never probed"))),
		heartbeat: heartbeatMs(env.HEARTBEAT_MINUTES),
	};
	const reports = verified.body.reports;
	const results: ReportResult[] = new Array(reports.length);
	const successes: string[] = [];
	try {
		await forEachLimit(reports, MAX_CONCURRENT_RUNS, async (report, index) => {
			const { result, success } = await recordReport(report, context);
			results[index] = result;
			if (success) successes.push(success);
		});
	} catch (error) {
		// A fault of ours (KV down, or a write KV refused for rate): the runtime sends the reports
		// again, signed afresh; the ones already recorded are then dropped as duplicates.
		logError("reports-unrecorded", error, { reports: reports.length });
		return answer({ error: "the scheduler could not record the reports; send them again" }, 503, { "retry-after": "1" });
	}
	// One log event for the whole request: the summary, then the replaced service's success line
	// (which users watch for) for each piece that succeeded, so a steady run costs a fraction of
	// a log event.
	console.log([JSON.stringify({ event: "reports", signer: verified.signer, reports: reports.length, ...countBy(results) }), ...successes].join("\n"));
	return answer({ results }, 200);
}

/** What one report request shares. */
interface Context {
	env: ReportsEnv;
	identity: Identity;
	invocation: Invocation;
	heartbeat: number;
}

/** Records one report if its ticket is ours and current; the success line to log, if it succeeded. */
async function recordReport(report: RunReport, { env, identity, invocation, heartbeat }: Context): Promise<{ result: ReportResult; success?: string }> {
	const runId = typeof report?.runId === "string" ? clip(report.runId) : "";
	// Only the protocol's outcomes count: anything else changes nothing.
	if (report?.outcome !== "ok" && report?.outcome !== "failed") return { result: { runId, status: "invalid" } };
	const ticket = await readTicket(identity, report.ticket, Date.now());
	if (ticket.status !== "valid" || ticket.message.runId !== runId) return { result: { runId, status: ticket.status === "late" ? "late" : "unknown" } };
	const { message } = ticket;
	const durationMs = Number.isFinite(report.durationMs) && report.durationMs >= 0 ? Math.round(report.durationMs) : 0;
	const recorded = await recordAnswer(env, invocation, message, answerOf(report), {
		attempts: ticket.attempt,
		started: ticket.dispatchedAt,
		durationMs,
		heartbeat,
	});
	if (recorded.kind === "dropped") return { result: { runId, status: "dropped" } };
	if (recorded.event === "success") return { result: { runId, status: "recorded" }, success: successLine(message) };
	logEvent("run", { outcome: recorded.event, piece: `${message.space}/${message.pieceId}`, runId, kind: message.kind, durationMs, failures: recorded.entry?.failures ?? 0, error: recorded.error });
	return { result: { runId, status: "recorded" } };
}

/** A report's outcome as an answer: ok, or the piece's failure with its error (`notFound`: no such piece or no bgUpdater). */
function answerOf(report: RunReport): Answer {
	if (report.outcome === "ok") return { kind: "ok" };
	const error = typeof report.error === "string" && report.error.trim() ? clip(report.error.trim()) : "the piece failed (the runtime gave no error)";
	return report.notFound === true ? { kind: "failed", error, notFound: true } : { kind: "failed", error };
}

function countBy(results: ReportResult[]): Record<string, number> {
	const counts: Record<string, number> = {};
	for (const { status } of results) counts[status] = (counts[status] ?? 0) + 1;
	return counts;
}
