import { StatusError, json } from "itty-router";
import { logError } from "../log";
import { isWriteRateLimited } from "../registry/store";

export { StatusError };

/**
 * A refusal the caller may retry after `seconds`: its answer carries `Retry-After`, as HTTP
 * asks of a 429 (and allows for others).
 */
export function retryLater(status: number, message: string, seconds: number): StatusError {
	return new StatusError(status, { error: message, retryAfter: Math.max(1, Math.ceil(seconds)) });
}

/**
 * The one place errors become responses: a StatusError thrown at any depth answers its
 * status and message as `{success: false, error}`; anything else is a fault of ours, logged
 * with its reason and answered as a bare 500 so internals never leak. KV's refusal of a
 * second write of one key within a second is the caller's to retry: 429.
 */
export function errorResponse(error: unknown, request?: Request): Response {
	if (error instanceof StatusError) {
		const headers: Record<string, string> = error.status === 401 ? { "www-authenticate": 'Bearer realm="bg-piece-scheduler"' } : {};
		if (typeof error.retryAfter === "number") headers["retry-after"] = String(error.retryAfter);
		return json({ success: false, error: error.message }, { status: error.status, headers });
	}
	if (isWriteRateLimited(error)) {
		// KV takes one write per second per key: the piece was written a moment ago.
		return json({ success: false, error: "this piece was written a moment ago; try again in a second" }, { status: 429, headers: { "retry-after": "1" } });
	}
	logError("request-failed", error, { method: request?.method, path: request ? new URL(request.url).pathname : undefined });
	return json({ success: false, error: "internal error" }, { status: 500 });
}

/** The answer for a route that does not exist. */
export function notFound(message = "no such route"): Response {
	return json({ success: false, error: message }, { status: 404 });
}
