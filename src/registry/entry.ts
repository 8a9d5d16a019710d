/** Which piece: the registry's key, unique per (space, pieceId). */
export interface PieceRef {
	/** The space's DID (`did:key:z…`). */
	space: string;
	/** The piece id (`fid1:…`, stored without the URI spelling's `of:`). */
	pieceId: string;
}

/**
 * One registered piece, as stored in the registry and answered by the API. The first eight
 * fields are the replaced service's entry; the rest is what this scheduler tracks besides.
 * Times are milliseconds since the epoch; 0 means "never" / "not set".
 */
export interface PieceEntry extends PieceRef {
	/** Free-form name of what registered the piece (e.g. `gmail`); picks the example piece locally. */
	integration: string;
	createdAt: number;
	updatedAt: number;
	/** When it was disabled; 0 while enabled. */
	disabledAt: number;
	/**
	 * Who disabled it, while disabled: an operator, its third failure in a row, or the runtime
	 * finding no such piece (`not-found`). Absent while enabled, and from entries disabled before it existed.
	 */
	disabledBy?: DisabledBy;
	/** When its last run the runtime answered finished, success or failure (the replaced service's meaning); 0 before the first. */
	lastRun: number;
	/** Human-readable state: `Success`, the last error, `Disabled: …`, `Initializing`, … */
	status: string;
	/** Consecutive failures of the piece itself (runtime outages do not count). */
	failures: number;
	/** The first tick (by scheduledTime) that may run it again; 0 = the next tick. */
	nextRunAt: number;
	/** The run id of the last run handled, so a redelivered message is not run twice. */
	lastRunId: string;
	/** The last error the piece raised, kept after a later success for diagnosis. */
	lastError: string;
	/** How long the last run took, in ms. */
	lastDurationMs: number;
	/** Since when the runtime has been unavailable for this piece; 0 when it last answered. */
	unavailableSince: number;
	/** When the piece last failed; 0 if never. (Absent from entries written before it existed.) */
	lastFailureAt?: number;
	/** When its last successful run finished; 0 if never. (Absent from entries written before it existed.) */
	lastSuccessAt?: number;
	/** The recorded runs and admin actions, oldest first, at most RUN_HISTORY_LENGTH (src/policy/history.ts). */
	history?: HistoryRecord[];
}

/** Who disabled a piece: an operator, its failures, or the runtime finding no such piece. */
export type DisabledBy = "operator" | "failures" | "not-found";

/**
 * One recorded run. Runs are recorded when they are written anyway (their outcome changed
 * something, or the lastRun heartbeat was due), so keeping history costs no extra KV write.
 */
export interface RunRecord {
	/** When the run ended, ms. */
	at: number;
	outcome: "success" | "failure" | "disabled" | "unavailable" | "skipped";
	durationMs: number;
	/** The piece's error, why the runtime was unavailable, or why the run was skipped; clipped to 200 characters. */
	error?: string;
	/** For a skipped run: the run that was still going (a skip is recorded once per such run). */
	skippedFor?: string;
}

/** What an admin did to a piece (a delete leaves no entry: its log event is the record). */
export type AdminAction = "enable" | "disable" | "run-now" | "import";

/**
 * One admin action, in the history beside the runs: who (src/api/auth.ts `adminLabel`: an
 * Access identity or a token's fingerprint, never the token) did what. The fields before and
 * after are in its `admin-change` log event.
 */
export interface AdminRecord {
	/** When it was done, ms. */
	at: number;
	outcome: "admin";
	action: AdminAction;
	/** Who: `access:<email>`, `access-service-token:<client id>` or `token:<fingerprint>`. */
	by: string;
}

/** One line of a piece's history: a recorded run or an admin action. */
export type HistoryRecord = RunRecord | AdminRecord;

/**
 * The part of an entry stored as KV list metadata, so a tick and the admin list read no
 * value per piece. Must serialise to ≤ 1,024 bytes (KV's metadata limit): see `summarise`.
 */
export type PieceSummary = Pick<
	PieceEntry,
	"integration" | "createdAt" | "updatedAt" | "disabledAt" | "disabledBy" | "lastRun" | "status" | "failures" | "nextRunAt" | "lastFailureAt" | "lastSuccessAt"
> & {
	/** The last recorded outcomes, oldest first, one letter each (src/policy/state.ts `recentRuns`). Absent from entries written before it existed. */
	recent?: string;
};
