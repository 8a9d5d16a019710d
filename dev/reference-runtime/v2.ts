import { identityFromPassphrase, type Identity } from "../../src/identity/ed25519";
import { HEADERS, utf8 } from "../../src/runtime/protocol";
import { MAX_BATCH_RUNS, PROTOCOL_V2, type DispatchedRun, type RunAck, type RunReport } from "../../src/runtime/protocol-v2";
import { signedHeaders } from "../../src/runtime/sign";
import { verifyDispatch } from "../../src/runtime/verify";
import { RUNNER_TIMEOUT_ERROR, allowList, logRunTaken, precheck, runExample, seenBefore, type ExampleEnv } from "./examples";

/** The reference runtime's settings for protocol 2. */
export interface V2Env extends ExampleEnv {
	ALLOWED_SIGNERS?: string;
	/** The passphrase of the key this runtime signs its reports with; the scheduler's RUNTIME_SIGNERS must name its DID. */
	RUNTIME_PASS?: string;
	/** How long reports gather at most before they are sent (ms); a full batch of 100 goes at once. */
	REPORT_FLUSH_MS?: string;
}

/** The default report key's passphrase: as insecure as the scheduler's default, for development. */
export const DEFAULT_RUNTIME_PASS = "reference runtime (development only)";

const answer = (body: unknown, status = 200) => Response.json(body, { status, headers: { [HEADERS.version]: PROTOCOL_V2 } });

let identity: { pass: string; key: Promise<Identity> } | null = null;

/** The key this runtime signs its reports with. */
export function runtimeIdentity(env: V2Env): Promise<Identity> {
	const pass = env.RUNTIME_PASS || DEFAULT_RUNTIME_PASS;
	if (identity?.pass !== pass) identity = { pass, key: identityFromPassphrase(pass) };
	return identity.key;
}

/**
 * `POST /v2/runs` (protocol 2): verify the dispatch, acknowledge every run at once (accepted,
 * busy, failed, refused), run the accepted ones in the background, and report their
 * outcomes to the dispatch's `reportTo`, batched, signed with this runtime's key.
 */
export async function dispatchV2(request: Request, env: V2Env, ctx: ExecutionContext): Promise<Response> {
	const verified = await verifyDispatch(request, { allowedSigners: allowList(env.ALLOWED_SIGNERS), seenBefore });
	if (!verified.ok) {
		if (!request.bodyUsed) await request.arrayBuffer();
		return answer({ error: verified.error }, verified.status);
	}
	const { runs, reportTo, timeoutMs } = verified.body;
	const acks: RunAck[] = runs.map((run) => {
		if (verified.replayed.has(run.runId)) return { runId: run.runId, status: "refused", error: "replayed runId" };
		// A liveness probe: acknowledge it, run nothing, report nothing.
		if (run.probe) return { runId: run.runId, status: "accepted" };
		const piece = `${run.space}/${run.pieceId}`;
		const early = precheck(run.integration, run, env);
		if (early?.kind === "busy") return { runId: run.runId, status: "busy", busy: early.busy };
		// A piece the runtime does not have (v1's 404) says so: the scheduler disables it at once.
		if (early?.kind === "failed") return early.status === 404 ? { runId: run.runId, status: "failed", error: early.error, notFound: true } : { runId: run.runId, status: "failed", error: early.error };
		if (early?.kind === "unavailable") return { runId: run.runId, status: "refused", error: early.error };
		logRunTaken(env, { protocol: 2, piece, integration: run.integration, runId: run.runId, signer: verified.signer });
		ctx.waitUntil(execute(run, reportTo, timeoutMs, env));
		return { runId: run.runId, status: "accepted" };
	});
	return answer({ runs: acks });
}

/** Runs one accepted run within the dispatch's timeout, then queues its report. */
async function execute(run: DispatchedRun, reportTo: string, timeoutMs: number, env: V2Env): Promise<void> {
	const started = Date.now();
	// The runtime enforces the run's limit itself: past it, the run is stopped and reported as timed out.
	const limit = new Promise<void>((resolve) => setTimeout(resolve, Math.max(1, Number(timeoutMs) || 600_000)));
	const outcome = await runExample(run.integration, run, run.runId, env, limit);
	const durationMs = Date.now() - started;
	const report: RunReport =
		outcome === null
			? { ticket: run.ticket, runId: run.runId, outcome: "failed", error: RUNNER_TIMEOUT_ERROR, durationMs }
			: outcome.kind === "ok"
				? { ticket: run.ticket, runId: run.runId, outcome: "ok", durationMs }
				: { ticket: run.ticket, runId: run.runId, outcome: "failed", error: outcome.error, durationMs };
	await queueReport(reportTo, report, env);
}

/**
 * Reports waiting to be sent, by destination. They gather until 100 are waiting or
 * REPORT_FLUSH_MS (default 1 s) has passed: each report request costs the scheduler a Worker
 * request and a log event, so full batches keep a run's share of both small.
 */
const outboxes = new Map<string, { reports: RunReport[]; sending: Promise<void> | null; flushNow: (() => void) | null }>();
const DEFAULT_FLUSH_MS = 1000;
/** How often a report request is tried before it is given up (the run is then simply run again by the next tick). */
const REPORT_ATTEMPTS = 5;

function queueReport(reportTo: string, report: RunReport, env: V2Env): Promise<void> {
	let box = outboxes.get(reportTo);
	if (!box) outboxes.set(reportTo, (box = { reports: [], sending: null, flushNow: null }));
	box.reports.push(report);
	const outbox = box;
	if (!outbox.sending) {
		const full = new Promise<void>((resolve) => (outbox.flushNow = resolve));
		const pause = new Promise((resolve) => setTimeout(resolve, Number(env.REPORT_FLUSH_MS ?? DEFAULT_FLUSH_MS)));
		outbox.sending = Promise.race([pause, full]).then(async () => {
			outbox.sending = null;
			const pending = outbox.reports.splice(0);
			for (let i = 0; i < pending.length; i += MAX_BATCH_RUNS) await deliver(reportTo, pending.slice(i, i + MAX_BATCH_RUNS), env);
		});
	}
	const sending = outbox.sending;
	if (outbox.reports.length >= MAX_BATCH_RUNS) outbox.flushNow?.();
	return sending;
}

/** Sends one report request, signed afresh on each attempt, retrying a scheduler that is unavailable. */
async function deliver(reportTo: string, reports: RunReport[], env: V2Env): Promise<void> {
	const key = await runtimeIdentity(env);
	const url = new URL(reportTo);
	const body = utf8(JSON.stringify({ reports }));
	for (let attempt = 1; attempt <= REPORT_ATTEMPTS; attempt++) {
		try {
			const headers = await signedHeaders(key, "POST", url, body, Date.now(), PROTOCOL_V2, "bg-report-v2");
			const response = await fetch(url, { method: "POST", headers, body });
			await response.arrayBuffer();
			// A refusal (4xx) is final; 429 and 5xx mean "not now": send again, signed afresh.
			const final = response.ok || (response.status >= 400 && response.status < 500 && response.status !== 429);
			if (final) {
				if (!response.ok) console.log(JSON.stringify({ event: "reference-report-refused", status: response.status, reports: reports.length }));
				return;
			}
		} catch (error) {
			console.log(JSON.stringify({ event: "reference-report-failed", attempt, error: String(error) }));
		}
		await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt));
	}
}
