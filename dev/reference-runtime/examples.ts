/**
 * The reference runtime's example pieces (DEVELOPMENT HARNESS), shared by its protocol 1 and 2
 * endpoints. The registration's `integration` picks the example; what each one does is
 * described once here, as an outcome the endpoints put in their own protocol's words.
 */

/** What an example piece did. */
export type ExampleOutcome =
	| { kind: "ok"; detail: Record<string, unknown> }
	/** The piece itself failed: `status` is the v1 HTTP status (422 raised, 404 no bgUpdater). */
	| { kind: "failed"; error: string; status: number }
	/** The runtime cannot run anything (the `unavailable` example). */
	| { kind: "unavailable"; error: string }
	/** The piece's previous run is still going. */
	| { kind: "busy"; busy: { runId: string; since: number } };

/** The settings the examples read. */
export interface ExampleEnv {
	/** "false" keeps the runtime from logging each run it takes (the tests, which read outcomes instead). */
	LOG_RUNS?: string;
	SLOW_PIECE_MS?: string;
	/** How long a run counts as going (busy) at most: the scheduler's RUNTIME_TIMEOUT_MS. */
	RUN_LIMIT_MS?: string;
}

/** Runs per piece, for `counter` (per isolate: a harness, not a store). */
const counts = new Map<string, number>();
/** Runs still going, by piece: a second run of a piece meanwhile is refused as busy. */
const running = new Map<string, { runId: string; since: number }>();

/** How often `counter` ran for a piece. */
export function countOf(piece: string): number {
	return counts.get(piece) ?? 0;
}

/** What the example would answer at once, before running: busy, failing at once, or null to run. */
export function precheck(integration: string, piece: string, env: ExampleEnv): ExampleOutcome | null {
	switch (integration) {
		case "missing":
			return { kind: "failed", error: "piece has no bgUpdater stream", status: 404 };
		case "unavailable":
			return { kind: "unavailable", error: "example outage: the runtime is unavailable" };
		case "slow": {
			// The runtime knows which runs are still going; a run past the limit the scheduler
			// waits for is abandoned and no longer blocks the piece.
			const going = running.get(piece);
			if (going && Date.now() - going.since < Number(env.RUN_LIMIT_MS ?? 600_000)) return { kind: "busy", busy: going };
			return null;
		}
		default:
			return null;
	}
}

/**
 * Runs an example piece to its end, once `precheck` said to. `stop` resolves when the run
 * must end early (the scheduler stopped waiting, or the runtime's own time limit): the run
 * then ends as `null`.
 */
export async function runExample(integration: string, piece: string, runId: string, env: ExampleEnv, stop: Promise<void>): Promise<Exclude<ExampleOutcome, { kind: "busy" | "unavailable" }> | null> {
	switch (integration) {
		case "fail":
			return { kind: "failed", error: "example failure: the fail piece raised an error", status: 422 };
		case "slow": {
			const ms = Number(env.SLOW_PIECE_MS ?? 630_000);
			running.set(piece, { runId, since: Date.now() });
			try {
				const finished = await Promise.race([new Promise<true>((resolve) => setTimeout(() => resolve(true), ms)), stop.then(() => false as const)]);
				return finished ? { kind: "ok", detail: { slept: ms } } : null;
			} finally {
				if (running.get(piece)?.runId === runId) running.delete(piece);
			}
		}
		default: {
			const count = countOf(piece) + 1;
			counts.set(piece, count);
			return { kind: "ok", detail: { count } };
		}
	}
}

/** Replay keys seen within the clock-skew window, with the time they expire. */
const seen = new Map<string, number>();
const REPLAY_WINDOW_MS = 10 * 60_000;

/** The runtime's replay memory (per isolate; a real runtime with several instances needs a shared store). */
export function seenBefore(key: string): boolean {
	const now = Date.now();
	for (const [k, expires] of seen) {
		// Keys expire in insertion order: stop at the first still live.
		if (expires >= now) break;
		seen.delete(k);
	}
	if (seen.has(key)) return true;
	seen.set(key, now + REPLAY_WINDOW_MS);
	return false;
}

/** Logs a run the runtime took, unless LOG_RUNS is "false". */
export function logRunTaken(env: ExampleEnv, fields: Record<string, unknown>): void {
	if (env.LOG_RUNS !== "false") console.log(JSON.stringify({ event: "reference-run", ...fields }));
}

/** The comma-separated ALLOWED_SIGNERS as a list; empty allows no one. */
export function allowList(value: string | undefined): string[] {
	return (value ?? "").split(",").map((s) => s.trim()).filter(Boolean);
}
