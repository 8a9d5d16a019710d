import { serviceIdentity } from "../identity/service";
import { logError } from "../log";
import { getLastTick } from "../registry/store";
import { runtimeTarget, runTimeoutMs } from "../runtime/client";

/**
 * `GET /api/health`: always 200 while the Worker answers; `status` says whether it can do
 * its job (`ok`), or what is missing (`degraded`, with `problems`).
 */
export async function health(_request: Request, env: Env) {
	const problems: string[] = [];
	const target = runtimeTarget(env);
	if (target.kind === "none") problems.push(target.problem);
	let did: string | null = null;
	try {
		did = (await serviceIdentity(env)).did;
	} catch (error) {
		logError("identity-invalid", error);
		problems.push("IDENTITY is not a valid PKCS#8 Ed25519 key");
	}
	if (!env.ADMIN_TOKEN) problems.push("ADMIN_TOKEN is not set: the admin API is disabled");
	return {
		status: problems.length ? "degraded" : "ok",
		service: "bg-piece-scheduler",
		time: Date.now(),
		did,
		runtime: target.kind === "none" ? null : { via: target.kind, timeoutMs: runTimeoutMs(env) },
		lastTick: await getLastTick(env),
		problems,
	};
}
