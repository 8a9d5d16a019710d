import { laneProblems } from "../lanes";
import { adminTokens } from "./admin-tokens";
import { basePath } from "./base-path";
import { accessConfig } from "./cloudflare-access";
import { DEFAULT_OPERATOR_PASS, publicKeyFromDid } from "../identity/ed25519";
import { serviceIdentity } from "../identity/service";
import { logError } from "../log";
import { registryCapacity } from "../policy/capacity";
import { PERIOD_MS } from "../policy/schedule";
import type { RuntimeHealth } from "../policy/runtime-health";
import { getLastTick, getRuntimeHealth, type TickSummary } from "../registry/store";
import { runtimeSigners } from "../reports";
import { runtimeTarget, runTimeoutMs } from "../runtime/client";
import { reportTarget, runtimeProtocol } from "../runtime/dispatch";

/** Hosts where plain http is fine: this machine. */
const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * `GET /api/health`: always 200 while the Worker answers; `status` says whether it can do
 * its job (`ok`), or what is wrong (`degraded`, with `problems`): configuration, an unreadable
 * registry, a registry near or at its cap (MAX_PIECES), a cron that stopped firing, a runtime
 * that runs have found unavailable (silent, refusing, not a runtime at all) since when and why. Health makes no runtime call: what it
 * says of the runtime is what the last runs saw (`meta/runtime`, kept by the consumer).
 */
export async function health(request: Request, env: Env) {
	const problems: string[] = [];
	// What is a problem deployed but expected on this machine (npm start): said, not counted.
	const notes: string[] = [];
	const local = LOCAL_HOSTS.has(new URL(request.url).hostname);
	const target = runtimeTarget(env);
	if (target.kind === "none") problems.push(target.problem);
	// Plain HTTP to a remote runtime lets anyone on the path read, replay (within the skew
	// window) and answer runs, and forged failures can disable pieces.
	if (target.kind === "url" && target.url.protocol === "http:" && !LOCAL_HOSTS.has(target.url.hostname)) {
		problems.push("PIECE_RUNTIME_URL uses plain http to a remote host: use https");
	}
	const protocol = runtimeProtocol(env);
	if (env.RUNTIME_PROTOCOL && !["1", "2"].includes(env.RUNTIME_PROTOCOL.trim())) problems.push(`RUNTIME_PROTOCOL is "${env.RUNTIME_PROTOCOL}": it must be 1 or 2 (taken as 1)`);
	problems.push(...laneProblems(env));
	const base = basePath(env);
	if ("problem" in base) problems.push(`${base.problem}: only the registration route is served`);
	if (protocol === "2") {
		const report = reportTarget(env);
		if ("problem" in report) problems.push(report.problem);
		// Reports are answered under BASE_PATH like every route but registration.
		const reportsPath = `${"prefix" in base ? base.prefix : ""}/api/runtime/reports`;
		if ("url" in report && new URL(report.url).pathname !== reportsPath) problems.push(`REPORT_URL's path is ${new URL(report.url).pathname}, but this Worker takes reports at ${reportsPath} (BASE_PATH)`);
		const signers = runtimeSigners(env);
		if (!signers.length) problems.push("RUNTIME_SIGNERS is empty: no runtime may report outcomes (protocol 2), so no run is ever recorded as done");
		for (const signer of signers) if (!publicKeyFromDid(signer)) problems.push(`RUNTIME_SIGNERS has "${signer.slice(0, 80)}", which is not an Ed25519 did:key`);
	}
	if (!env.IDENTITY && (!env.OPERATOR_PASS || env.OPERATOR_PASS === DEFAULT_OPERATOR_PASS)) {
		(local ? notes : problems).push(`signing with the default passphrase "${DEFAULT_OPERATOR_PASS}", which anyone can reproduce: set IDENTITY or OPERATOR_PASS${local ? " before deploying" : ""}`);
	}
	let did: string | null = null;
	try {
		did = (await serviceIdentity(env)).did;
	} catch (error) {
		logError("identity-invalid", error);
		problems.push("IDENTITY is not a valid PKCS#8 Ed25519 key");
	}
	// Admin is open to an admin token or a Cloudflare Access sign-in; half-configured Access admits no one.
	const access = accessConfig(env);
	if (access.kind === "problem") problems.push(access.problem);
	if (!adminTokens(env).length && access.kind !== "on") problems.push("neither ADMIN_TOKEN nor Cloudflare Access is set: the admin API is disabled");
	let lastTick: TickSummary | null = null;
	let seen: RuntimeHealth | null = null;
	try {
		[lastTick, seen] = await Promise.all([getLastTick(env), getRuntimeHealth(env)]);
	} catch (error) {
		logError("health-registry-unreadable", error);
		problems.push("the registry (KV) could not be read");
	}
	// The cron fires every minute; three missed ticks mean it is not firing.
	if (lastTick && Date.now() - lastTick.scheduledTime > 3 * PERIOD_MS) {
		problems.push(`no tick since ${new Date(lastTick.scheduledTime).toISOString()}: is the cron trigger firing?`);
	}
	// The cap (MAX_PIECES), against the last tick's count: warned of from 90 %, so an operator
	// raises it or clears junk before new pieces are refused (507).
	const registry = registryCapacity(lastTick, env.MAX_PIECES);
	if (registry.state === "full") problems.push(`the registry is full: ${registry.pieces} pieces of MAX_PIECES ${registry.max}; new pieces are refused (507) until pieces are deleted or MAX_PIECES is raised`);
	if (registry.state === "near") problems.push(`the registry nears its cap: ${registry.pieces} pieces of MAX_PIECES ${registry.max} (${Math.floor((100 * registry.pieces) / registry.max)} %); new pieces are refused from ${registry.max} on`);
	if (seen?.state === "unavailable") {
		problems.push(`the runtime has been unavailable since ${new Date(seen.since).toISOString()}: ${seen.reason}`);
	}
	return {
		status: problems.length ? "degraded" : "ok",
		service: "bg-piece-scheduler",
		time: Date.now(),
		did,
		runtime: target.kind === "none" ? null : { via: target.kind, protocol: Number(protocol), timeoutMs: runTimeoutMs(env), state: seen?.state ?? "ok", since: seen?.since ?? null, reason: seen?.reason || null },
		// The hour of earlier ticks is for /api/stats; health shows the last one.
		lastTick: lastTick && { ...lastTick, recent: undefined },
		// Counted by the last tick (null before the first): as stale as that, about a minute.
		registry: { pieces: lastTick ? registry.pieces : null, maxPieces: registry.max, state: registry.state },
		problems,
		notes,
	};
}
