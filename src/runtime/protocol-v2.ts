import type { RunRequestBody } from "./protocol.ts";

/**
 * The runtime protocol, version 2 (docs/runtime-protocol.md, "Version 2"): the scheduler
 * dispatches a batch of runs in one signed request, the runtime acknowledges each at once
 * (accepted, busy, failed or refused) and later reports each accepted run's outcome in a
 * signed request of its own. Shared by the scheduler and runtimes; no bindings, so it runs in
 * workerd, Node and Deno alike.
 */

/** The protocol version of a v2 message, in the `bg-protocol` header. */
export const PROTOCOL_V2 = "2";

/** Most runs in one dispatch, and most reports in one report request (a queue batch is ≤ 100). */
export const MAX_BATCH_RUNS = 100;

/** Largest v2 request body either side reads: 100 runs with tickets are ≈ 100 KB. */
export const MAX_V2_BODY_BYTES = 512 * 1024;

/** One run of a dispatch: the v1 run body (`probe` on a liveness probe: accept it, run nothing, report nothing) plus its ticket. */
export interface DispatchedRun extends RunRequestBody {
	/** Opaque to the runtime: returned unchanged in the run's report. */
	ticket: string;
}

/** The JSON body of a dispatch (`POST <v2 runs endpoint>`). */
export interface DispatchBody {
	runs: DispatchedRun[];
	/** Where to report the outcomes: the scheduler's `POST /api/runtime/reports`. */
	reportTo: string;
	/** How long a run may take; the runtime stops (and reports `timed out`) past it. */
	timeoutMs: number;
}

/** What the runtime says of one dispatched run, at once. */
export type RunAck =
	| { runId: string; status: "accepted" }
	| { runId: string; status: "busy"; busy: { runId: string; since: number } }
	/** `notFound: true`: there is no such piece, or it has no bgUpdater (protocol 1's 404); the scheduler disables it at once. */
	| { runId: string; status: "failed"; error: string; notFound?: boolean }
	| { runId: string; status: "refused"; error: string };

/** The JSON body of a dispatch's answer (200, `bg-protocol: 2`): one ack per run. */
export interface DispatchAnswer {
	runs: RunAck[];
}

/** One accepted run's outcome, reported by the runtime. */
export interface RunReport {
	/** The run's ticket, exactly as dispatched. */
	ticket: string;
	runId: string;
	outcome: "ok" | "failed";
	/** Why the piece failed (for `failed`): its error, or `timed out after <ms> ms`. */
	error?: string;
	/** For `failed`: there is no such piece, or it has no bgUpdater (protocol 1's 404); the scheduler disables it at once. */
	notFound?: boolean;
	/** How long the run took, in ms. */
	durationMs: number;
}

/** The JSON body of a report request (`POST /api/runtime/reports`, signed by the runtime). */
export interface ReportBody {
	reports: RunReport[];
}

/** What the scheduler made of one report. */
export interface ReportResult {
	runId: string;
	/**
	 * recorded: applied (or changed nothing, as a steady success); dropped: the piece was
	 * deleted, disabled or re-registered meanwhile, or the run was already recorded (a
	 * duplicate report); unknown: the ticket is not one the scheduler issued; late: the
	 * ticket expired; invalid: its outcome is neither `ok` nor `failed`.
	 */
	status: "recorded" | "dropped" | "unknown" | "late" | "invalid";
}

/** The answer to a report request (200, `bg-protocol: 2`). */
export interface ReportAnswer {
	results: ReportResult[];
}
