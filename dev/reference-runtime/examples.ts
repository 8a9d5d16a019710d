/**
 * The reference runtime's example pieces (DEVELOPMENT HARNESS), shared by its protocol 1 and 2
 * endpoints. The registration's `integration` picks the example; what each one does is
 * described once here, as an outcome the endpoints put in their own protocol's words. It
 * behaves as Common Fabric's runner does where that is a fact of the runner: one run at a time
 * per space (one worker per space), an answer only once the piece is idle (an async updater's
 * work included), and the runner's own error texts.
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
	/** How long the `async` example's work goes on after its handler has returned. */
	ASYNC_PIECE_MS?: string;
}

/** The runner's timeout text, which users of the replaced service have seen. */
export const RUNNER_TIMEOUT_ERROR = "Worker timed out.";

/** Runs per piece, for `counter` (per isolate: a harness, not a store). */
const counts = new Map<string, number>();
/**
 * Runs that take time (`slow`, `async`) still going, by space: the runner has one worker per
 * space, so a run for a space busy with another is refused as busy (never as the piece's
 * failure). Instant runs end before anything else can arrive.
 */
const running = new Map<string, { runId: string; since: number }>();

/** How often `counter` ran for a piece. */
export function countOf(piece: string): number {
	return counts.get(piece) ?? 0;
}

/** What the example would answer at once, before running: busy, failing at once, or null to run. */
export function precheck(integration: string, piece: { space: string; pieceId: string }, env: ExampleEnv): ExampleOutcome | null {
	// The runtime knows which runs are still going; a run past the limit the scheduler waits
	// for is abandoned and no longer blocks the space.
	const going = running.get(piece.space);
	if (going && Date.now() - going.since < Number(env.RUN_LIMIT_MS ?? 600_000)) return { kind: "busy", busy: going };
	switch (integration) {
		case "missing":
			return { kind: "failed", error: `Error: No updater stream found for piece: ${piece.pieceId}`, status: 404 };
		case "unavailable":
			return { kind: "unavailable", error: "example outage: the runtime is unavailable" };
		default:
			return null;
	}
}

/**
 * Runs an example piece to its end, once `precheck` said to. `stop` resolves when the run
 * must end early (the scheduler stopped waiting, or the runtime's own time limit): the run
 * then ends as `null`.
 */
export async function runExample(integration: string, piece: { space: string; pieceId: string }, runId: string, env: ExampleEnv, stop: Promise<void>): Promise<Exclude<ExampleOutcome, { kind: "busy" | "unavailable" }> | null> {
	const key = `${piece.space}/${piece.pieceId}`;
	switch (integration) {
		case "fail":
			return { kind: "failed", error: "example failure: the fail piece raised an error", status: 422 };
		case "slow":
			return holdingSpace(piece.space, runId, async () => {
				const ms = Number(env.SLOW_PIECE_MS ?? 630_000);
				const finished = await Promise.race([sleep(ms).then(() => true as const), stop.then(() => false as const)]);
				return finished ? { kind: "ok", detail: { slept: ms } } : null;
			});
		case "async":
			// The replaced service's known weakness: the handler returns at once, its fetch goes on.
			// The runner answers only once the piece is idle, i.e. once that work has finished.
			return holdingSpace(piece.space, runId, async () => {
				const pending = sleep(Number(env.ASYNC_PIECE_MS ?? 1500));
				const handlerReturned = Date.now();
				const idle = await Promise.race([pending.then(() => true as const), stop.then(() => false as const)]);
				if (!idle) return null;
				const count = countOf(key) + 1;
				counts.set(key, count);
				return { kind: "ok", detail: { count, waitedForIdleMs: Date.now() - handlerReturned } };
			});
		default: {
			const count = countOf(key) + 1;
			counts.set(key, count);
			return { kind: "ok", detail: { count } };
		}
	}
}

/** Runs `work` as the space's one run going: runs for the space meanwhile are busy. */
async function holdingSpace<T>(space: string, runId: string, work: () => Promise<T>): Promise<T> {
	running.set(space, { runId, since: Date.now() });
	try {
		return await work();
	} finally {
		if (running.get(space)?.runId === runId) running.delete(space);
	}
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
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
