/**
 * BENCHMARK HARNESS ONLY: which consumer invocation dispatched each protocol 2 run still in
 * flight. A run is in flight from its dispatch until its report reaches the bench Worker (or
 * its ack says the runtime did not take it). `runsMax` of an invocation is the most runs it
 * had dispatched and not yet finished at any one moment while it ran; runs that finish after
 * the invocation ended no longer change it. One isolate runs the consumers and the report
 * route, so a module-level map sees both.
 */

/** The runs one invocation has in flight, and the most it had at once. */
export interface RunsInFlight {
	runs: number;
	runsMax: number;
}

const owners = new Map<string, RunsInFlight>();

/** Puts a dispatch's runs in flight for the invocation `owner`. */
export function dispatchedRuns(owner: RunsInFlight, runIds: readonly string[]): void {
	for (const id of runIds) owners.set(id, owner);
	owner.runs += runIds.length;
	owner.runsMax = Math.max(owner.runsMax, owner.runs);
}

/** A run has finished (its report arrived, or it was not taken). */
export function finishedRun(runId: string): void {
	const owner = owners.get(runId);
	if (!owner) return;
	owners.delete(runId);
	owner.runs--;
}

/** Protocol 2 runs dispatched and not yet finished, across all invocations. */
export function runsOutstanding(): number {
	return owners.size;
}

/** Forgets every run in flight (a new design's measurement). */
export function forgetRuns(): void {
	owners.clear();
}
