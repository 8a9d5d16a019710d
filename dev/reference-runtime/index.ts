/**
 * The reference piece runtime: a DEVELOPMENT HARNESS that implements the runtime protocol
 * (docs/runtime-protocol.md), versions 1 (`POST /v1/run`) and 2 (`POST /v2/runs`), with
 * example pieces instead of real ones. The registration's `integration` picks the example
 * (examples.ts):
 *   counter      succeeds and counts its runs (also any integration not listed here)
 *   fail         the piece raises an error
 *   slow         takes SLOW_PIECE_MS, outlasting the scheduler's timeout
 *   async        its handler returns at once, its work takes ASYNC_PIECE_MS; answered when done
 *   unavailable  the runtime is unavailable
 *   missing      the piece has no bgUpdater
 * One run at a time per space: a run for a space busy with a slow or async run is busy.
 */
import { countOf, type ExampleEnv } from "./examples";
import { runV1 } from "./v1";
import { dispatchV2, runtimeIdentity, type V2Env } from "./v2";

type RuntimeEnv = ExampleEnv & V2Env;

const json = (body: unknown, status = 200) => Response.json(body, { status });

export default {
	async fetch(request: Request, env: RuntimeEnv, ctx: ExecutionContext): Promise<Response> {
		const url = new URL(request.url);
		if (request.method === "POST" && url.pathname === "/v1/run") return runV1(request, env);
		if (request.method === "POST" && url.pathname === "/v2/runs") return dispatchV2(request, env, ctx);
		const count = /^\/counts\/([^/]+)\/([^/]+)$/.exec(url.pathname);
		if (request.method === "GET" && count) {
			return json({ count: countOf(`${decodeURIComponent(count[1]!)}/${decodeURIComponent(count[2]!)}`) });
		}
		if (request.method === "GET" && url.pathname === "/") {
			return json({
				harness: "reference piece runtime (development only)",
				protocols: [1, 2],
				run: "POST /v1/run",
				dispatch: "POST /v2/runs",
				reportSigner: (await runtimeIdentity(env)).did,
				examples: ["counter", "fail", "slow", "async", "unavailable", "missing"],
			});
		}
		// Like any web server's miss: plain text, so a scheduler pointed at a wrong path sees no
		// runtime answer (and counts the run as unavailable rather than against the piece).
		// The body is drained first, as above.
		await request.arrayBuffer();
		return new Response("not found", { status: 404 });
	},
} satisfies ExportedHandler<RuntimeEnv>;
