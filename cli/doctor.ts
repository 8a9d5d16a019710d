/**
 * `npm run cli -- doctor`: a deployment checked end to end from outside, as an operator would
 * after `npm run deploy`: the Worker answers and is this service, its health, its identity, the
 * runtime as its runs last saw it, a recent tick, and the admin token. Each check says what to
 * fix when it fails.
 */
import type { Transport } from "./transfer";

/** One check's outcome. */
export interface Check {
	ok: boolean;
	what: string;
	/** What to do, for a failed check. */
	fix?: string;
}

interface Health {
	status?: string;
	service?: string;
	did?: string | null;
	runtime?: { via: string; protocol: number; state: string; since: number | null; reason: string | null } | null;
	lastTick?: { scheduledTime: number; dispatched: number; listed: number } | null;
	problems?: string[];
	notes?: string[];
}

/** Three missed ticks: the cron is not firing (health says the same). */
const TICK_STALE_MS = 3 * 60_000;

/**
 * Runs every check against the Worker behind `transport`; `adminToken` from ADMIN_TOKEN, and
 * `serviceToken` when the transport signs in with a Cloudflare Access service token instead.
 */
export async function doctor(transport: Transport, url: string, adminToken: string | undefined, now = Date.now(), serviceToken = false): Promise<Check[]> {
	const checks: Check[] = [];
	let health: Health;
	try {
		const response = await transport("/api/health");
		const body = (await response.json().catch(() => ({}))) as Health;
		if (body.service !== "bg-piece-scheduler") {
			return [{ ok: false, what: `${url}/api/health answered HTTP ${response.status}, not as this scheduler`, fix: "point --url (or BG_URL) at the Worker, with its BASE_PATH if it has one (https://app.example.com/bg-scheduler)" }];
		}
		health = body;
	} catch (error) {
		return [{ ok: false, what: `cannot reach ${url}: ${(error as Error).message}`, fix: "is the Worker deployed (npm run deploy) or running (npm start)? Set --url or BG_URL" }];
	}
	checks.push({ ok: true, what: `the scheduler answers at ${url}` });
	checks.push(health.status === "ok" ? { ok: true, what: "health: ok" } : { ok: false, what: `health: ${health.status}`, fix: "the problems below say what; README, Troubleshooting" });
	for (const problem of health.problems ?? []) checks.push({ ok: false, what: problem });
	for (const note of health.notes ?? []) checks.push({ ok: true, what: `note: ${note}` });
	checks.push(health.did ? { ok: true, what: `it signs as ${health.did} (the runtime must allow this DID)` } : { ok: false, what: "it has no identity", fix: "IDENTITY must be a PKCS#8 Ed25519 key (or unset it and set OPERATOR_PASS)" });
	const runtime = health.runtime;
	if (!runtime) checks.push({ ok: false, what: "no runtime configured", fix: "set PIECE_RUNTIME_URL or a RUNTIME service binding (README, Deploying)" });
	else if (runtime.state === "unavailable") checks.push({ ok: false, what: `the runtime has been unavailable since ${new Date(runtime.since ?? now).toISOString()}: ${runtime.reason}`, fix: "npm run conformance -- --url <the runtime's endpoint> says what it answers" });
	else checks.push({ ok: true, what: `the runtime (protocol ${runtime.protocol}, via ${runtime.via}): no outage seen by the last runs` });
	const tick = health.lastTick;
	if (!tick) checks.push({ ok: false, what: "no tick recorded yet", fix: "the cron trigger fires each minute once deployed (wrangler.toml [triggers]); locally npm start's TICK_SECONDS" });
	else if (now - tick.scheduledTime > TICK_STALE_MS) checks.push({ ok: false, what: `the last tick was at ${new Date(tick.scheduledTime).toISOString()}`, fix: "is the cron trigger deployed? npx wrangler triggers deploy" });
	else checks.push({ ok: true, what: `the last tick (${Math.round((now - tick.scheduledTime) / 1000)} s ago) dispatched ${tick.dispatched} of ${tick.listed} listed` });
	if (!adminToken && serviceToken) {
		const response = await transport("/api/stats");
		if (response.ok) checks.push({ ok: true, what: "the Access service token is accepted as an admin" });
		else checks.push({ ok: false, what: `the Access service token is refused (HTTP ${response.status})`, fix: "its client id must be on the Worker's ACCESS_ADMINS, and an Access policy must admit it (docs/cloudflare-access.md)" });
	} else if (!adminToken) {
		checks.push({ ok: false, what: "ADMIN_TOKEN is not set here, so the admin API was not tried", fix: "export ADMIN_TOKEN=<the Worker's admin token>" });
	} else {
		const response = await transport("/api/stats", { headers: { authorization: `Bearer ${adminToken}` } });
		if (response.ok) checks.push({ ok: true, what: "the admin token is accepted" });
		else if (response.status === 503) checks.push({ ok: false, what: "the Worker's admin API is off", fix: "npx wrangler secret put ADMIN_TOKEN" });
		else checks.push({ ok: false, what: `the admin token is refused (HTTP ${response.status})`, fix: "ADMIN_TOKEN here must be the Worker's secret of that name" });
	}
	return checks;
}

/** The checks as lines: ✓ or ✗, and the fix under a failed one. */
export function describeChecks(checks: Check[]): string {
	return checks.map((check) => `${check.ok ? "✓" : "✗"} ${check.what}${check.fix ? `\n    → ${check.fix}` : ""}`).join("\n");
}
