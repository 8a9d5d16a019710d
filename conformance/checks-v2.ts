import { HEADERS, REPLAYED_ERROR } from "../src/runtime/protocol";
import { PROTOCOL_V2, type DispatchedRun } from "../src/runtime/protocol-v2";
import { errorOf, fail, pass, refusedAs, type Check, type Verdict } from "./check";
import { foreignIdentity, bytesOf, type Kit } from "./kit";
import { ackOf, describeDispatch, dispatch, dispatchBody, dispatchedRun, freshTicket, probeRun, sendDispatch, signDispatch, type Dispatched } from "./kit-v2";
import { runIdOf, signedKindOf, ticketOf, type ReportInbox, type Received } from "./reports";

/** How far off the clock the stale and future dispatches are: twice the default skew window. */
const SKEWED_MS = 10 * 60_000;

/** A dispatch and the run whose ack is judged. */
interface Sent {
	dispatched: Dispatched;
	runId: string;
}

/**
 * A dispatch's run was taken: 200, `bg-protocol: 2`, and an ack the scheduler reads as
 * accepted, failed (a real runtime does not know the kit's piece) or busy. Not unavailable.
 */
function acknowledged({ dispatched, runId }: Sent): Verdict {
	if (!dispatched.answered) return fail(dispatched.why);
	const described = describeDispatch(dispatched, runId);
	if (dispatched.verdict.kind === "unavailable") return fail(described);
	if (dispatched.status !== 200) return fail(`${described}; a protocol 2 acknowledgement is HTTP 200`);
	const ack = ackOf(dispatched, runId);
	if (ack?.kind === "accepted" || ack?.kind === "failed" || ack?.kind === "busy") return pass(described);
	if (ack?.kind === "replayed") return fail(`a first dispatch's run was refused as a replay (${REPLAYED_ERROR})`);
	return fail(described);
}

/** A check that some malformed or untrusted dispatch is refused (401, `bg-protocol: 2`, {error}). */
function refusal(name: string, what: string, send: (kit: Kit) => Promise<Sent>): Check {
	return {
		name,
		what,
		run: async (kit) => {
			const { dispatched, runId } = await send(kit);
			return refusedAs(dispatched, PROTOCOL_V2, dispatched.answered ? describeDispatch(dispatched, runId) : "");
		},
	};
}

/** Signs a fresh one-run dispatch with `options`, lets `alter` change the headers, and sends it. */
async function sendOne(kit: Kit, options: Parameters<typeof signDispatch>[2] = {}, alter = (headers: Record<string, string>) => headers): Promise<Sent> {
	const run = dispatchedRun(kit);
	const bytes = bytesOf(dispatchBody(kit, [run]));
	return { dispatched: await sendDispatch(kit, bytes, alter(await signDispatch(kit, bytes, options)), [run.runId]), runId: run.runId };
}

/** Sends one run as the scheduler would. */
async function sendRun(kit: Kit, run: DispatchedRun): Promise<Sent> {
	return { dispatched: await dispatch(kit, [run]), runId: run.runId };
}

/**
 * Version 2 of the runtime protocol (docs/runtime-protocol.md, "Version 2"), one entry per
 * behaviour, in the order they are run. Every dispatch carries one run of the kit's piece with
 * a fresh runId (so the checks do not interfere) and names the kit's report listener as
 * `reportTo`, so whatever a runtime reports has somewhere to go.
 */
export const V2_CHECKS: readonly Check[] = [
	{
		name: "dispatch",
		what: "a valid signed dispatch of one run is answered 200 with bg-protocol: 2 and an ack for the run: accepted, failed or busy",
		run: async (kit) => {
			const sent = await sendRun(kit, dispatchedRun(kit));
			const verdict = acknowledged(sent);
			// Every other check reads less without this one: say the likely cause.
			if (!verdict.pass && sent.dispatched.answered && sent.dispatched.status === 401) return fail(`${verdict.why}; does the runtime allow the signer above?`);
			return verdict;
		},
	},
	{
		name: "probe",
		what: 'a liveness probe (a run with "probe": true) is acknowledged accepted, and nothing is run',
		run: async (kit) => {
			const sent = await sendRun(kit, probeRun(kit));
			const verdict = acknowledged(sent);
			if (!verdict.pass) return verdict;
			const ack = ackOf(sent.dispatched, sent.runId);
			return ack?.kind === "accepted" ? verdict : fail(`${verdict.note}; a probe must be acknowledged accepted`);
		},
	},
	refusal("unsigned", "a dispatch without bg-signer, bg-timestamp and bg-signature is refused", (kit) =>
		sendOne(kit, {}, (headers) => {
			const { [HEADERS.signer]: _signer, [HEADERS.timestamp]: _timestamp, [HEADERS.signature]: _signature, ...rest } = headers;
			return rest;
		}),
	),
	refusal("tampered-body", "a signed dispatch whose body was changed afterwards is refused", async (kit) => {
		const run = dispatchedRun(kit);
		const signed = await signDispatch(kit, bytesOf(dispatchBody(kit, [run])));
		// One character of the runId changed after signing: still valid JSON, same length.
		const tampered = { ...run, runId: run.runId.slice(0, -1) + (run.runId.at(-1) === "0" ? "1" : "0") };
		return { dispatched: await sendDispatch(kit, bytesOf(dispatchBody(kit, [tampered])), signed, [tampered.runId]), runId: tampered.runId };
	}),
	refusal("stale-timestamp", "a dispatch signed 10 minutes ago is refused", (kit) => sendOne(kit, { at: Date.now() - SKEWED_MS })),
	refusal("future-timestamp", "a dispatch signed 10 minutes ahead is refused", (kit) => sendOne(kit, { at: Date.now() + SKEWED_MS })),
	refusal("foreign-signer", "a validly signed dispatch from a key the runtime does not allow is refused", async (kit) => sendOne(kit, { signer: await foreignIdentity() })),
	// The label is what keeps a captured v1 signature from ever passing for a dispatch.
	refusal("v1-signature", "a dispatch signed over the bg-run-v1 canonical string (with bg-protocol: 2) is refused", (kit) => sendOne(kit, { kind: "bg-run-v1" })),
	{
		name: "replay",
		what: 'the exact same dispatch sent a second time has its run refused as "replayed runId" (or is refused whole with 401)',
		run: async (kit) => {
			const run = dispatchedRun(kit);
			const bytes = bytesOf(dispatchBody(kit, [run]));
			const headers = await signDispatch(kit, bytes);
			const first = acknowledged({ dispatched: await sendDispatch(kit, bytes, headers, [run.runId]), runId: run.runId });
			if (!first.pass) return fail(`the first dispatch was not taken: ${first.why}`);
			const second = await sendDispatch(kit, bytes, headers, [run.runId]);
			if (ackOf(second, run.runId)?.kind === "replayed") return pass(`second copy: run acknowledged refused (${REPLAYED_ERROR})`);
			if (second.answered && second.status === 401 && errorOf(second.body) === REPLAYED_ERROR) {
				const refusal = refusedAs(second, PROTOCOL_V2, "");
				return refusal.pass ? pass(`second copy: 401 ${REPLAYED_ERROR}`) : fail(`second copy: ${refusal.why}`);
			}
			return fail(`the second copy was answered ${describeDispatch(second, run.runId)}, not refused as a replay (its run acknowledged refused "${REPLAYED_ERROR}", or the dispatch refused with 401 {"error":"${REPLAYED_ERROR}"})`);
		},
	},
	{
		name: "redelivery",
		what: "the same runId again with attempt 2, freshly signed, is taken, not refused as a replay",
		run: async (kit) => {
			const run = dispatchedRun(kit);
			const first = acknowledged(await sendRun(kit, run));
			if (!first.pass) return fail(`the first dispatch was not taken: ${first.why}`);
			// A redelivery is dispatched with a ticket of its own, as the scheduler seals each attempt.
			const second = await sendRun(kit, { ...run, attempt: 2, ticket: freshTicket() });
			if (ackOf(second.dispatched, run.runId)?.kind === "replayed") return fail("attempt 2 was refused as a replay: the replay key is <runId>#<attempt>, so a redelivery must pass");
			const verdict = acknowledged(second);
			return verdict.pass ? pass(`attempt 2: ${verdict.note}`) : fail(`attempt 2: ${verdict.why}`);
		},
	},
	{
		name: "report",
		what: "an accepted run is reported to reportTo: a POST signed bg-report-v2 by the runtime's key, with the ticket as dispatched, outcome ok or failed, and durationMs",
		run: async (kit) => {
			const inbox = kit.reports;
			if (!inbox) throw new Error("no report listener");
			const run = dispatchedRun(kit);
			const started = Date.now();
			const sent = await sendRun(kit, run);
			if (ackOf(sent.dispatched, run.runId)?.kind !== "accepted") return fail(`the run was not accepted, so nothing would be reported: ${describeDispatch(sent.dispatched, run.runId)}`);
			// Matched by ticket as well, so a report that names the run wrongly is still found and named.
			const request = await inbox.waitFor((report) => runIdOf(report) === run.runId || ticketOf(report) === run.ticket, kit.reportTimeoutMs);
			if (!request) return fail(`no report of the run reached ${inbox.reportTo.href} within ${kit.reportTimeoutMs} ms${refusedMeanwhile(inbox, started)}`);
			return judgeReport(request, run, inbox, request.at - started);
		},
	},
];

/** The requests the listener refused since `since`, in a few words ("" if none): perhaps the report, unreadable. */
function refusedMeanwhile(inbox: ReportInbox, since: number): string {
	const refused = inbox.received.filter((request) => request.at >= since && !request.verification.ok);
	const last = refused.at(-1);
	if (!last || last.verification.ok) return "";
	return `; the listener refused ${refused.length} request(s) meanwhile, the last: ${last.method} ${last.path}: ${last.verification.error}`;
}

/** Judges the request that carried the run's report, as the scheduler's report endpoint would. */
async function judgeReport(request: Received, run: DispatchedRun, inbox: ReportInbox, afterMs: number): Promise<Verdict> {
	if (request.method !== "POST") return fail(`the report came as ${request.method}, not POST`);
	if (request.path !== inbox.reportTo.pathname) return fail(`the report was sent to ${request.path}, not the reportTo path ${inbox.reportTo.pathname}`);
	if (request.version !== PROTOCOL_V2) return fail(`the report request carries ${request.version === null ? "no bg-protocol header" : `bg-protocol: ${request.version}`}, not bg-protocol: 2`);
	const { verification } = request;
	if (!verification.ok) {
		const kind = verification.error === "bad signature" ? await signedKindOf(request) : null;
		const signer = request.headers.get(HEADERS.signer);
		const hint = kind ? `: it is signed over the ${kind} canonical string, a report's is bg-report-v2` : verification.error === "signer not allowed" ? `: signed by ${signer}, not the --runtime-signer ${inbox.signer}` : "";
		return fail(`the report request was refused: ${verification.error}${hint}`);
	}
	// The body as sent, untyped: verifyReport checks only that it has a reports list.
	const report = request.reports.find((entry) => runIdOf(entry) === run.runId || ticketOf(entry) === run.ticket) as Record<string, unknown>;
	if (report.runId !== run.runId) return fail(`the report with the run's ticket names run ${JSON.stringify(report.runId)}, not ${run.runId}`);
	if (report.ticket !== run.ticket) return fail(`the report's ticket is ${shown(report.ticket)}, not the one dispatched, byte for byte (${run.ticket})`);
	if (report.outcome !== "ok" && report.outcome !== "failed") return fail(`the report's outcome is ${shown(report.outcome)}, not "ok" or "failed"`);
	if (typeof report.durationMs !== "number" || !Number.isFinite(report.durationMs) || report.durationMs < 0) return fail(`the report's durationMs is ${shown(report.durationMs)}, not a number of milliseconds`);
	const outcome = report.outcome === "failed" ? `failed (${typeof report.error === "string" && report.error ? report.error : "without an error text"})` : "ok";
	const whose = inbox.signer ? "the --runtime-signer" : "any valid signer accepted; --runtime-signer requires one";
	return pass(`reported after ${afterMs} ms: POST ${request.path}, outcome ${outcome}, durationMs ${report.durationMs}, ticket echoed, signed by ${verification.signer} (${whose})`);
}

/** A value from a report, for a failure line: JSON, cut short. */
function shown(value: unknown): string {
	const text = value === undefined ? "missing" : JSON.stringify(value);
	return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}
