import { HEADERS, PROTOCOL_VERSION } from "../../src/runtime/protocol";
import { verifyRunRequest } from "../../src/runtime/verify";
import { allowList, logRunTaken, precheck, runExample, seenBefore, type ExampleEnv } from "./examples";

/** Answers of the run endpoint carry the protocol header, which tells the scheduler a runtime answered. */
const answer = (body: unknown, status = 200) => Response.json(body, { status, headers: { [HEADERS.version]: PROTOCOL_VERSION } });

/** `POST /v1/run` (protocol 1): one run per request, answered when it is done. */
export async function runV1(request: Request, env: ExampleEnv & { ALLOWED_SIGNERS?: string }): Promise<Response> {
	// Empty ALLOWED_SIGNERS allows no one: a runtime must name the scheduler it serves.
	const verified = await verifyRunRequest(request, { allowedSigners: allowList(env.ALLOWED_SIGNERS), seenBefore });
	if (!verified.ok) {
		// Refused before the body was read: drain it (cancelling is not enough for workerd, which
		// reports a request stream left unread once the response is sent).
		if (!request.bodyUsed) await request.arrayBuffer();
		return answer({ error: verified.error }, verified.status);
	}
	// A liveness probe (the scheduler got no answer to a run in time): run nothing, answer now.
	if (verified.body.probe === true) return answer({ ok: true, probe: true });
	const { space, pieceId, integration, runId } = verified.body;
	const piece = `${space}/${pieceId}`;
	logRunTaken(env, { protocol: 1, piece, integration, runId, signer: verified.signer });
	// The run ends early when the scheduler stops waiting: a second past its timeout
	// (RUN_LIMIT_MS), by when it has given up, or when the platform says the request was
	// aborted. A run the scheduler gave up on must not go on in the background.
	const stop = new Promise<void>((resolve) => {
		setTimeout(resolve, Number(env.RUN_LIMIT_MS ?? 600_000) + 1_000);
		request.signal.addEventListener("abort", () => resolve(), { once: true });
	});
	const outcome = precheck(integration, { space, pieceId }, env) ?? (await runExample(integration, { space, pieceId }, runId, env, stop));
	// Nobody reads this (the scheduler has given up); if anyone did, it is the runtime's, not the piece's.
	if (!outcome) return answer({ error: "the scheduler stopped waiting" }, 503);
	switch (outcome.kind) {
		case "ok":
			return answer({ ok: true, ...outcome.detail });
		case "failed":
			return answer({ error: outcome.error }, outcome.status);
		case "unavailable":
			return answer({ error: outcome.error }, 503);
		case "busy":
			return answer({ error: "busy", busy: outcome.busy }, 409);
	}
}
