/**
 * Structured logs: one JSON object per line with an `event` name, so Workers Logs can filter
 * and count them. Secrets never reach these: callers pass ids, counts and error texts only.
 */
export function logEvent(event: string, fields: Record<string, unknown> = {}): void {
	console.log(JSON.stringify({ event, ...fields }));
}

/** Logs a fault with its reason; the reason stays in logs and never reaches a response. */
export function logError(event: string, error: unknown, fields: Record<string, unknown> = {}): void {
	console.error(JSON.stringify({ event, level: "error", error: describe(error), ...fields }));
}

/** A one-line description of anything thrown. */
export function describe(error: unknown): string {
	if (error instanceof Error) return `${error.name}: ${error.message}`;
	return String(error);
}
