/**
 * The reference piece runtime: a DEVELOPMENT HARNESS that implements the runtime protocol
 * (docs/runtime-protocol.md) with example pieces instead of real ones. The registration's
 * `integration` picks the example:
 *   counter      succeeds and counts its runs (also any integration not listed here)
 *   fail         the piece raises an error (422 {error})
 *   slow         takes SLOW_PIECE_MS, outlasting the scheduler's timeout; a run of it that
 *                arrives while the last is still going is refused as busy (409)
 *   unavailable  the runtime is unavailable (503)
 *   missing      the piece has no bgUpdater (404)
 */
import { HEADERS, PROTOCOL_VERSION } from "../../src/runtime/protocol";
import { verifyRunRequest } from "../../src/runtime/verify";

interface RuntimeEnv {
	SLOW_PIECE_MS?: string;
	/** How long a run counts as going (busy) at most: the scheduler's RUNTIME_TIMEOUT_MS. */
	RUN_LIMIT_MS?: string;
	ALLOWED_SIGNERS?: string;
}

/** Runs per piece, for `counter` (per isolate: a harness, not a store). */
const counts = new Map<string, number>();
/** Runs still going, by piece: a second run of a piece meanwhile is refused as busy. */
const running = new Map<string, { runId: string; since: number }>();
/** Replay keys seen within the clock-skew window, with the time they expire. */
const seen = new Map<string, number>();
const REPLAY_WINDOW_MS = 10 * 60_000;

const json = (body: unknown, status = 200) => Response.json(body, { status });
/** Answers of the run endpoint carry the protocol header, which tells the scheduler a runtime answered. */
const answer = (body: unknown, status = 200) => Response.json(body, { status, headers: { [HEADERS.version]: PROTOCOL_VERSION } });

function seenBefore(key: string): boolean {
	const now = Date.now();
	for (const [k, expires] of seen) if (expires < now) seen.delete(k);
	if (seen.has(key)) return true;
	seen.set(key, now + REPLAY_WINDOW_MS);
	return false;
}

async function run(request: Request, env: RuntimeEnv): Promise<Response> {
	// Empty ALLOWED_SIGNERS allows no one: a runtime must name the scheduler it serves.
	const allowedSigners = (env.ALLOWED_SIGNERS ?? "").split(",").map((s) => s.trim()).filter(Boolean);
	const verified = await verifyRunRequest(request, { allowedSigners, seenBefore });
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
	console.log(JSON.stringify({ event: "reference-run", piece, integration, runId, signer: verified.signer }));
	switch (integration) {
		case "fail":
			return answer({ error: "example failure: the fail piece raised an error" }, 422);
		case "unavailable":
			return answer({ error: "example outage: the runtime is unavailable" }, 503);
		case "missing":
			return answer({ error: "piece has no bgUpdater stream" }, 404);
		case "slow": {
			// The runtime knows which runs are still going; the scheduler skips a busy piece's run.
			// A run past the limit the scheduler waits for is abandoned: it no longer blocks the piece.
			const going = running.get(piece);
			if (going && Date.now() - going.since < Number(env.RUN_LIMIT_MS ?? 600_000)) return answer({ error: "busy", busy: going }, 409);
			const ms = Number(env.SLOW_PIECE_MS ?? 630_000);
			running.set(piece, { runId, since: Date.now() });
			try {
				// A run ends when it is done or when the scheduler stops waiting (it gave up on it).
				await new Promise<void>((resolve) => {
					setTimeout(resolve, ms);
					request.signal.addEventListener("abort", () => resolve(), { once: true });
				});
			} finally {
				if (running.get(piece)?.runId === runId) running.delete(piece);
			}
			return answer({ ok: true, slept: ms });
		}
		default: {
			const count = (counts.get(piece) ?? 0) + 1;
			counts.set(piece, count);
			return answer({ ok: true, count });
		}
	}
}

export default {
	async fetch(request: Request, env: RuntimeEnv): Promise<Response> {
		const url = new URL(request.url);
		if (request.method === "POST" && url.pathname === "/v1/run") return run(request, env);
		const count = /^\/counts\/([^/]+)\/([^/]+)$/.exec(url.pathname);
		if (request.method === "GET" && count) {
			return json({ count: counts.get(`${decodeURIComponent(count[1]!)}/${decodeURIComponent(count[2]!)}`) ?? 0 });
		}
		if (request.method === "GET" && url.pathname === "/") {
			return json({ harness: "reference piece runtime (development only)", run: "POST /v1/run", examples: ["counter", "fail", "slow", "unavailable", "missing"] });
		}
		// Like any web server's miss: plain text, so a scheduler pointed at a wrong path sees no
		// runtime answer (and counts the run as unavailable rather than against the piece).
		// The body is drained first, as above.
		await request.arrayBuffer();
		return new Response("not found", { status: 404 });
	},
} satisfies ExportedHandler<RuntimeEnv>;
