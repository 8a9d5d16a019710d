#!/usr/bin/env node
// `npm start`: the whole system on this machine.
//  - the scheduler Worker (wrangler dev, Miniflare) on PORT, its KV and Queues persisted in
//    STATE_DIR (default .wrangler/state) so registrations survive restarts;
//  - the reference piece runtime (a development harness) on RUNTIME_PORT;
//  - a ticker that fires the cron every TICK_SECONDS, as Cloudflare does in production
//    (wrangler dev never fires crons by itself).
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { buildSync } from "esbuild";
import { formatLine } from "./local-log.mjs";
import { holderOf, isFree } from "./ports.mjs";
import { PASSED_THROUGH } from "./worker-settings.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const env = process.env;
const port = Number(env.PORT || 8787);
const runtimePort = Number(env.RUNTIME_PORT || port + 1);
const tickSeconds = Number(env.TICK_SECONDS ?? 60);
const adminToken = env.ADMIN_TOKEN || "dev-admin-token";
const persistTo = env.STATE_DIR || join(".wrangler", "state");
const base = `http://127.0.0.1:${port}`;

const jsonLogs = env.LOG_FORMAT === "json";
/** The two wranglers, once started. */
let children = [];

if (!Number.isFinite(tickSeconds) || tickSeconds < 0) fail(`TICK_SECONDS must be 0 (off) or a number of seconds, not "${env.TICK_SECONDS}"`);
if (env.LOG_FORMAT && !["json", "lines"].includes(env.LOG_FORMAT)) fail(`LOG_FORMAT must be "lines" (the default) or "json", not "${env.LOG_FORMAT}"`);

// Every port the system listens on, checked before anything starts: a port held by another
// program (or by a system an earlier run left behind) is named with its holder.
const PORTS = [
	[port, "PORT, the scheduler"],
	[runtimePort, "RUNTIME_PORT, the reference runtime"],
	[port + 1000, "PORT + 1000, the scheduler's inspector"],
	[runtimePort + 1000, "RUNTIME_PORT + 1000, the runtime's inspector"],
];
for (const [candidate, what] of PORTS) {
	if (!Number.isInteger(candidate) || candidate < 1 || candidate > 65535) fail(`port ${candidate} (${what}) is not a TCP port: set PORT (and RUNTIME_PORT) so that each of them and its + 1000 is below 65536`);
	if (!(await isFree(candidate))) {
		const holder = holderOf(candidate);
		fail(`port ${candidate} (${what}) is taken${holder ? ` by ${holder}` : " by another process"}.\n  Stop it, or start on other ports: PORT=${port + 10} npm start`);
	}
}

// Secrets go to the Worker through an env file, so wrangler shows them as hidden.
const stateDir = join(root, ".wrangler");
mkdirSync(stateDir, { recursive: true });
// One env file per port, so two systems (say, npm start and the dashboard tests) can run at once.
const envFile = join(stateDir, `start-${port}.env`);
// Protocol 2 by default, as deployed: runs go to the reference runtime's /v2/runs, which
// reports back to this scheduler, signed with its own key (RUNTIME_PASS).
const protocol = env.RUNTIME_PROTOCOL === "1" ? "1" : "2";
// Everything but registration is served under BASE_PATH, as deployed on the app's origin
// (docs/deploying-on-the-app-origin.md); read by the Worker's own code.
const placement = (await importWorkerModule("api/base-path.ts")).basePath({ BASE_PATH: env.BASE_PATH });
if ("problem" in placement) fail(placement.problem);
const prefix = placement.prefix;
const workerVars = {
	ADMIN_TOKEN: adminToken,
	RUNTIME_PROTOCOL: protocol,
	PIECE_RUNTIME_URL: env.PIECE_RUNTIME_URL || `http://127.0.0.1:${runtimePort}/${protocol === "2" ? "v2/runs" : "v1/run"}`,
	REPORT_URL: env.REPORT_URL || `http://127.0.0.1:${port}${prefix}/api/runtime/reports`,
	BASE_PATH: prefix,
	...pick(PASSED_THROUGH),
	// A PEM key spans lines, which an env file cannot carry: pass its base64 body alone.
	...(env.IDENTITY ? { IDENTITY: env.IDENTITY.replace(/-----(BEGIN|END) [A-Z ]+-----/g, "").replace(/\s+/g, "") } : {}),
};

// The reference runtime accepts runs signed by this scheduler's identity only, as a real
// runtime should; the DID is derived by the Worker's own identity code.
const { decodePkcs8, identityFromPassphrase, identityFromPkcs8, DEFAULT_OPERATOR_PASS } = await importWorkerModule("identity/ed25519.ts");
const serviceDid = (env.IDENTITY ? await identityFromPkcs8(decodePkcs8(env.IDENTITY)) : await identityFromPassphrase(env.OPERATOR_PASS || DEFAULT_OPERATOR_PASS)).did;
// The reference runtime signs its reports with RUNTIME_PASS (its default is this same text);
// the scheduler accepts reports from that DID, unless RUNTIME_SIGNERS names others.
const runtimePass = env.RUNTIME_PASS || "reference runtime (development only)";
const runtimeDid = (await identityFromPassphrase(runtimePass)).did;
workerVars.RUNTIME_SIGNERS ??= runtimeDid;
writeFileSync(envFile, Object.entries(workerVars).map(([k, v]) => `${k}="${envFileValue(k, v)}"`).join("\n") + "\n", { mode: 0o600 });

// The `slow` example outlasts the scheduler's run timeout, whatever it is set to, and a run
// counts as going (busy) for as long as the scheduler waits for it.
const runTimeoutMs = Number(env.RUNTIME_TIMEOUT_MS) > 0 ? Number(env.RUNTIME_TIMEOUT_MS) : 600_000;

const wrangler = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
// Ended with the script: on its signals, when its parent goes (a SIGTERM to `npm` leaves the
// script behind otherwise), and, through the watchdog, even when the script is killed outright.
const common = ["dev", "--ip", "127.0.0.1", "--show-interactive-dev-session=false"];
children = [
	start("runtime", [...common, "-c", "dev/reference-runtime/wrangler.toml", "--port", String(runtimePort), "--inspector-port", String(runtimePort + 1000), "--var", `ALLOWED_SIGNERS:${serviceDid}`, "--var", `RUNTIME_PASS:${runtimePass}`, "--var", `SLOW_PIECE_MS:${runTimeoutMs + 30_000}`, "--var", `RUN_LIMIT_MS:${runTimeoutMs}`]),
	start("scheduler", [...common, "-c", "wrangler.toml", "--port", String(port), "--inspector-port", String(port + 1000), "--persist-to", persistTo, "--test-scheduled", "--env-file", envFile]),
];
spawn(process.execPath, [join(root, "scripts", "watchdog.mjs"), String(process.pid), ...children.map((child) => String(child.pid))], { detached: true, stdio: "ignore" }).unref();
const parent = process.ppid;
setInterval(() => process.ppid !== parent && stop(0), 500).unref();

// Health is asked only once our own wrangler says it listens: the ports were free, so what
// answers is this system, never one left behind.
await children[1].ready;
await waitFor(`${base}${prefix}/api/health`);
console.log(`
  Background piece scheduler running on http://localhost:${port}
    dashboard                    http://localhost:${port}${prefix}/${prefix ? ` (BASE_PATH; registration stays at POST /api/integrations/bg)` : ""}
    runtime                      ${env.PIECE_RUNTIME_URL ? `${env.PIECE_RUNTIME_URL} (PIECE_RUNTIME_URL; the reference harness idles on ${runtimePort})` : `reference harness on http://localhost:${runtimePort}`} (protocol ${protocol}${protocol === "2" ? `, reports accepted from ${workerVars.RUNTIME_SIGNERS}` : ""})
    admin token                  ${env.ADMIN_TOKEN ? "(from ADMIN_TOKEN)" : adminToken}
    service identity             ${serviceDid}${env.IDENTITY || env.OPERATOR_PASS ? "" : ' (default passphrase "implicit trust": development only)'}
    cron                         ${tickSeconds ? `every ${tickSeconds} s` : "off (TICK_SECONDS=0); fire one: curl '" + base + "/cdn-cgi/local/scheduled?cron=*+*+*+*+*&time=<ms on a whole minute>'"}
`);
if (tickSeconds > 0) tickForever(tickSeconds * 1000);

/** Fires the cron at each multiple of the period, with scheduledTime on that boundary, like Cloudflare. */
function tickForever(periodMs) {
	const next = Math.ceil((Date.now() + 1) / periodMs) * periodMs;
	setTimeout(async () => {
		try {
			const response = await fetch(`${base}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("* * * * *")}&time=${next}`);
			if (!response.ok) console.error(`[ticker] tick answered HTTP ${response.status}`);
		} catch (error) {
			console.error(`[ticker] tick failed: ${error.message}`);
		}
		tickForever(periodMs);
	}, next - Date.now());
}

/**
 * Starts one `wrangler dev` in a process group of its own (so it and its workerd end
 * together), printing its output as `formatLine` puts it (LOG_FORMAT=json: unchanged).
 * `ready` settles when it says it listens.
 */
function start(name, args) {
	// No telemetry, and no fetch of the `Request.cf` sample from the internet (local only).
	const child = spawn(process.execPath, [wrangler, ...args], { cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" } });
	const tag = name === "scheduler" ? "" : `[${name}] `;
	let listening;
	child.ready = new Promise((resolve) => (listening = resolve));
	for (const stream of [child.stdout, child.stderr]) {
		let partial = "";
		stream.on("data", (chunk) => {
			const lines = (partial + chunk).split("\n");
			partial = lines.pop();
			for (const line of lines) {
				if (line.includes("Ready on http://")) listening();
				const shown = jsonLogs ? `${tag}${line}` : formatLine(line, tag);
				if (shown !== null) (stream === child.stderr ? process.stderr : process.stdout).write(`${shown}\n`);
			}
		});
	}
	child.on("exit", (code, signal) => {
		if (stopping) return;
		console.error(`[${name}] exited (${signal ?? `code ${code}`}); stopping`);
		stop(code || 1);
	});
	return child;
}

let stopping = false;

/** Ends every child's process group (SIGTERM, then SIGKILL after 5 s), then this script. */
async function stop(code = 0) {
	if (stopping) return;
	stopping = true;
	const running = children.filter((child) => child.exitCode === null && child.signalCode === null);
	const signal = (name) => running.forEach((child) => {
		try {
			process.kill(-child.pid, name);
		} catch {}
	});
	signal("SIGTERM");
	const ended = Promise.all(running.map((child) => new Promise((resolve) => child.once("exit", resolve))));
	if ((await Promise.race([ended.then(() => true), new Promise((resolve) => setTimeout(resolve, 5_000, false))])) === false) signal("SIGKILL");
	process.exit(code);
}

async function waitFor(url) {
	for (let i = 0; i < 600; i++) {
		try {
			if ((await fetch(url)).ok) return;
		} catch {}
		await new Promise((r) => setTimeout(r, 250));
	}
	fail(`the scheduler did not answer ${url} within 150 s`);
	// Stopping: nothing after this may run.
	await new Promise(() => {});
}

/**
 * A value as wrangler's env-file reader takes it back unchanged: inside double quotes, with
 * `$` escaped (it would expand variables). It has no escape for `"`, `\` or a line break, so
 * those are refused with a clear message rather than silently mangled.
 */
function envFileValue(name, value) {
	if (/["\\\r\n]/.test(value)) fail(`${name} contains a double quote, backslash or line break, which cannot be passed to wrangler dev; choose another value`);
	return value.replaceAll("$", "\\$");
}

/** One of the Worker's own modules (TypeScript), bundled for Node, so this script computes exactly what the Worker does. */
async function importWorkerModule(path) {
	const outfile = join(stateDir, "start", path.replace(/\.ts$/, ".mjs"));
	buildSync({ entryPoints: [join(root, "src", path)], outfile, bundle: true, platform: "node", format: "esm", logLevel: "error" });
	return import(pathToFileURL(outfile).href);
}

function pick(names) {
	return Object.fromEntries(names.filter((n) => env[n]).map((n) => [n, env[n]]));
}

function fail(message) {
	console.error(`npm start: ${message}`);
	if (children.length) stop(1);
	else process.exit(1);
}

for (const name of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(name, () => stop(0));
