#!/usr/bin/env node
// `npm run load [-- --seconds N] [--pieces N]`: the Worker under sustained load, on the local
// system `npm start` runs (bench/load-system.mjs starts it on free ports, with a fresh registry
// and its own ticker firing the cron each minute, as Cloudflare does). It seeds the registry
// through the admin import, then runs four phases of N seconds (default 60), each while ticks
// run and the reference runtime runs every due piece:
//   1. registrations: POST /api/integrations/bg as the shell's cf-updater sends them (no
//      headers, a text/plain JSON body), at 80% of the rate wrangler.toml's REGISTRATION_LIMITER
//      allows, spread evenly (open loop: a slow answer does not slow the sending); every fourth
//      re-registers a piece already registered, as OAuth reconnects do;
//   2. status reads: GET /api/integrations/bg/<space>/<pieceId> of known pieces, 50 at a time;
//   3. admin list pages: GET /api/integrations/bg?limit=100&cursor=… with the admin token, four
//      readers paging through the whole registry again and again;
//   4. the three at once, each at the same rate or concurrency as alone.
// Then it pages through the whole registry and checks that every piece answered 200 (or seeded)
// is listed exactly once, and nothing else is. It prints a table, then one JSON line, stops
// every process it started, and exits 1 if a goal is missed: a 5xx, a request not answered, a
// 4xx (429s among them: every request is valid and within the limits), a piece lost,
// duplicated or unexpected, a process left.
// A benchmark printing figures, not a test; a harness, not deployed.
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { figures, missedGoals, newTally, record, registryCheck, unanswered } from "./load-figures.mjs";
import { startSystem } from "./load-system.mjs";
import { shippedSettings } from "./rig.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, ".wrangler", "load");
const options = parse(process.argv.slice(2));
const ADMIN_TOKEN = "load-admin-token";
/** Without a REGISTRATION_LIMITER in wrangler.toml: registrations at one a second. */
const DEFAULT_RATE = { limit: 1, period: 1 };
const LIMIT = shippedSettings(root).registrationLimit;
const RATE = LIMIT ?? DEFAULT_RATE;
/** Registrations are sent at this share of the limit: under it, as a real user stays. */
const RATE_SHARE = 0.8;
const REGISTRATION_INTERVAL_MS = (RATE.period * 1000) / (RATE_SHARE * RATE.limit);
const READ_CONCURRENCY = 50;
const PAGERS = 4;
/** The admin list's default page (src/api/pieces.ts DEFAULT_PAGE_SIZE); the check afterwards takes KV's largest, 1,000. */
const PAGE_SIZE = 100;
/** A request with no answer by then counts as unanswered. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Seeded and registered pieces are spread over spaces of this many (far under MAX_PIECES_PER_SPACE). */
const PIECES_PER_SPACE = 10;
const started = Date.now();
const log = (...a) => console.error(`[load ${((Date.now() - started) / 1000).toFixed(0)}s]`, ...a);

const PHASES = [
	{ name: "registrations", loads: ["registrations"] },
	{ name: "status reads", loads: ["status reads"] },
	{ name: "admin pages", loads: ["admin pages"] },
	{ name: "all at once", loads: ["registrations", "status reads", "admin pages"] },
];

mkdirSync(out, { recursive: true });
const systemLog = join(out, "system.log");
log(`starting the local system (scripts/start.mjs; its output in ${systemLog})…`);
const system = await startSystem(root, { TICK_SECONDS: "60", ADMIN_TOKEN }, systemLog);
const { base } = system;
// Stopped with the system on the signals a user or supervisor sends, and when its parent goes:
// a SIGTERM to `npm run load` reaches npm alone and would leave this script, and the system it
// started, running out its phases.
const stopAndExit = (code) => system.stop().then(() => process.exit(code));
for (const [name, code] of [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]]) process.once(name, () => stopAndExit(code));
const parent = process.ppid;
setInterval(() => process.ppid !== parent && stopAndExit(1), 500).unref();
const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** Keys (`space/pieceId`) that must be in the registry: seeded, or registered and answered 200. */
const expected = new Set();
/** Keys of registrations answered with a 5xx or not at all: they may or may not have landed. */
const uncertain = new Set();
/** Known pieces, for status reads and re-registrations. */
const known = [];
/** Each tick seen in /api/health meanwhile, by scheduledTime. */
const ticks = new Map();
let spaces = 0;
let space = newSpace();

/** Each load: sends its requests until `until`, into `tally`, and settles once all are answered. */
const LOADS = {
	async registrations(until, tally) {
		const sent = [];
		for (let n = 0, at = Date.now(); at < until; n++, at += REGISTRATION_INTERVAL_MS) {
			await sleep(at - Date.now());
			// Every fourth a re-registration of a known pair (which stays one entry).
			const again = n % 4 === 3 && known.length > 0;
			const piece = again ? known[Math.floor(Math.random() * known.length)] : newPiece();
			sent.push(register(piece, tally));
		}
		await Promise.all(sent);
	},
	async "status reads"(until, tally) {
		await Promise.all(Array.from({ length: READ_CONCURRENCY }, async () => {
			while (Date.now() < until) {
				const piece = known[Math.floor(Math.random() * known.length)];
				await timed(tally, `${base}/api/integrations/bg/${piece.space}/${piece.pieceId}`, {});
			}
		}));
	},
	async "admin pages"(until, tally) {
		// Whole passes through the registry, first page to last.
		tally.passes = 0;
		await Promise.all(Array.from({ length: PAGERS }, async () => {
			let cursor = null;
			while (Date.now() < until) {
				const query = new URLSearchParams({ limit: String(PAGE_SIZE), ...(cursor ? { cursor } : {}) });
				const answer = await timed(tally, `${base}/api/integrations/bg?${query}`, { headers: adminHeaders });
				// At the last page, or on a refusal, the next pass starts from the first.
				cursor = answer?.status === 200 ? JSON.parse(answer.body).cursor : null;
				if (answer?.status === 200 && !cursor) tally.passes++;
			}
		}));
	},
};

let exitCode = 0;
/** Whether the report, which names any process left, was printed. */
let reported = false;
try {
	log(`system up on ${base}; seeding ${options.pieces} pieces through the admin import…`);
	await seed(options.pieces);
	const watcher = setInterval(watchTicks, 5_000);
	const rows = [];
	const phases = [];
	for (const phase of PHASES) {
		log(`phase "${phase.name}": ${options.seconds} s`);
		const from = Date.now();
		const until = from + options.seconds * 1000;
		const tallies = Object.fromEntries(phase.loads.map((load) => [load, newTally()]));
		await Promise.all(phase.loads.map((load) => LOADS[load](until, tallies[load])));
		// Until the last answer came, and at least the phase (an open loop's last request goes before its end).
		const seconds = Math.max(options.seconds, (Date.now() - from) / 1000);
		await watchTicks();
		const seen = [...ticks.values()].filter((tick) => tick.scheduledTime >= from && tick.scheduledTime < Date.now());
		phases.push({ phase: phase.name, from, seconds: Math.round(seconds * 10) / 10, ticks: seen });
		for (const load of phase.loads) rows.push({ phase: phase.name, load, figures: figures(tallies[load], seconds) });
	}
	clearInterval(watcher);

	log("checking the registry: every page of the admin list…");
	const check = registryCheck(expected, uncertain, await listAll());
	const stats = await getJson(`${base}/api/stats`, adminHeaders);
	log("stopping the system…");
	const { stopped, left: leftovers } = await system.stop();
	const missed = missedGoals(rows, check, leftovers);
	const report = {
		seconds: options.seconds,
		seeded: options.pieces,
		registrationLimit: LIMIT,
		registrationsPerSecond: Math.round((1000 / REGISTRATION_INTERVAL_MS) * 1000) / 1000,
		readConcurrency: READ_CONCURRENCY,
		pagers: PAGERS,
		pageSize: PAGE_SIZE,
		rows: rows.map(({ phase, load, figures: f }) => ({ phase, load, ...f })),
		phases,
		registry: check,
		stats: { counts: stats.counts, lastHour: { ticks: stats.lastHour.ticks, dispatched: stats.lastHour.dispatched, failedPieces: stats.lastHour.failedPieces } },
		processesStopped: stopped.length,
		leftovers,
		goalsMet: missed.length === 0,
		missed,
		benchSeconds: Math.round((Date.now() - started) / 1000),
	};
	printTable(report);
	console.log(JSON.stringify(report));
	reported = true;
	if (missed.length) exitCode = 1;
} catch (error) {
	console.error(`npm run load: ${error.stack ?? error}`);
	exitCode = 1;
} finally {
	// Stopped here when a phase threw (otherwise stop() answers what it found above).
	const { left } = await system.stop();
	if (left.length) {
		if (!reported) console.error(`npm run load: left running after the stop, then killed: ${left.join("; ")}`);
		exitCode = 1;
	}
}
process.exit(exitCode);

/** One registration, exactly as cf-updater sends it: `fetch` with a string body, no headers (so text/plain). */
async function register(piece, tally) {
	const key = keyOf(piece);
	const answer = await timed(tally, `${base}/api/integrations/bg`, { method: "POST", body: JSON.stringify({ pieceId: piece.pieceId, space: piece.space, integration: "counter" }) });
	if (answer?.status === 200) {
		if (!expected.has(key)) {
			expected.add(key);
			known.push(piece);
		}
	} else if (!answer || answer.status >= 500) uncertain.add(key);
}

/** A request timed from sending to the last byte of its answer: `{status, body}`, or null when none came. */
async function timed(tally, url, init) {
	tally.sent++;
	const t0 = performance.now();
	try {
		const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
		const body = await response.text();
		record(tally, response.status, performance.now() - t0);
		return { status: response.status, body };
	} catch (error) {
		unanswered(tally, error.name === "TimeoutError" ? `no answer within ${REQUEST_TIMEOUT_MS} ms` : String(error.cause?.message ?? error.message));
		return null;
	}
}

/** Seeds `count` enabled `counter` pieces, 100 rows a request (the import's limit), each due at the next tick. */
async function seed(count) {
	const now = Date.now();
	for (let from = 0; from < count; from += 100) {
		const pieces = Array.from({ length: Math.min(100, count - from) }, newPiece);
		const rows = pieces.map((piece) => ({ ...piece, integration: "counter", createdAt: now, updatedAt: now, disabledAt: 0, lastRun: 0, status: "Initializing" }));
		const answer = await getJson(`${base}/api/admin/import`, adminHeaders, { method: "POST", body: JSON.stringify({ rows }) });
		if (answer.counts.created !== rows.length) throw new Error(`the import created ${answer.counts.created} of ${rows.length} rows: ${JSON.stringify(answer.results.filter((r) => r.outcome !== "created").slice(0, 3))}`);
		for (const piece of pieces) {
			expected.add(keyOf(piece));
			known.push(piece);
		}
	}
}

/** Every listed entry's key, in list order, paging as the CLI's export does (1,000 a page). */
async function listAll() {
	const keys = [];
	let cursor = null;
	do {
		const query = new URLSearchParams({ limit: "1000", ...(cursor ? { cursor } : {}) });
		const page = await getJson(`${base}/api/integrations/bg?${query}`, adminHeaders);
		for (const piece of page.pieces) keys.push(keyOf(piece));
		cursor = page.cursor;
	} while (cursor);
	return keys;
}

/** Records the last tick's summary from /api/health (the ticker fires one each minute). */
async function watchTicks() {
	try {
		const { lastTick } = await getJson(`${base}/api/health`, {});
		if (lastTick) ticks.set(lastTick.scheduledTime, lastTick);
	} catch {
		// Counted nowhere: the phases' own requests say how the Worker answers.
	}
}

async function getJson(url, headers, init = {}) {
	const response = await fetch(url, { ...init, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
	const text = await response.text();
	if (!response.ok) throw new Error(`${init.method ?? "GET"} ${url}: HTTP ${response.status} ${text.slice(0, 300)}`);
	return JSON.parse(text);
}

/** A fresh piece with valid ids (src/schema.ts): `fid1:` + base64url of 32 random bytes, in a space of PIECES_PER_SPACE. */
function newPiece() {
	if (++spaces % PIECES_PER_SPACE === 0) space = newSpace();
	return { space, pieceId: `fid1:${randomBytes(32).toString("base64url")}` };
}

/** A random Ed25519-shaped space DID: `did:key:z6Mk` + 44 base58btc characters. */
function newSpace() {
	const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
	return `did:key:z6Mk${Array.from(randomBytes(44), (byte) => BASE58[byte % 58]).join("")}`;
}

function keyOf(piece) {
	return `${piece.space}/${piece.pieceId}`;
}

function printTable(r) {
	const limit = r.registrationLimit ? `${r.registrationLimit.limit} per ${r.registrationLimit.period} s (wrangler.toml REGISTRATION_LIMITER)` : `none in wrangler.toml (default ${DEFAULT_RATE.limit} per ${DEFAULT_RATE.period} s assumed)`;
	console.log(`\nUnder sustained load: ${r.seconds} s a phase, ${r.seeded} pieces seeded; registration limit ${limit}, registrations sent at ${r.registrationsPerSecond} a second; status reads ${r.readConcurrency} at a time; ${r.pagers} admin readers, ${r.pageSize} a page\n`);
	const header = ["phase", "load", "sent", "answered", "2xx", "4xx", "429", "5xx", "p50 ms", "p99 ms", "max ms", "req/s"];
	const lines = r.rows.map((row) => [row.phase, row.load, row.sent, row.answered, row.s2xx, row.s4xx, row.s429, row.s5xx, row.p50Ms ?? "–", row.p99Ms ?? "–", row.maxMs ?? "–", row.perSecond].map(String));
	const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => line[i].length)));
	for (const line of [header, ...lines]) console.log(line.map((cell, i) => (i < 2 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  "));
	console.log("");
	const passes = r.rows.filter((row) => row.load === "admin pages").map((row) => `${row.passes} in "${row.phase}"`);
	console.log(`whole passes through the registry by the admin readers: ${passes.join(", ")}`);
	for (const p of r.phases) {
		const shown = p.ticks.map((t) => `${new Date(t.scheduledTime).toISOString().slice(11, 19)}: ${t.listed} listed, ${t.dispatched} dispatched, ${t.ms} ms`).join("; ");
		console.log(`ticks during "${p.phase}" (${p.seconds} s): ${p.ticks.length}${shown ? ` (${shown})` : ""}`);
	}
	const c = r.registry;
	console.log(`registry afterwards: ${c.listed} listed, ${c.expected} expected (seeded or answered 200): ${c.lost} lost, ${c.duplicated} duplicated, ${c.unexpected} unexpected`);
	console.log(`stats: ${JSON.stringify(r.stats.counts.byState)}; last hour ${r.stats.lastHour.ticks} ticks, ${r.stats.lastHour.dispatched} runs dispatched`);
	console.log(`the system's processes: ${r.processesStopped} stopped, ${r.leftovers.length} left running`);
	console.log(r.goalsMet ? "goals met: no 5xx, every request answered (all 2xx), nothing lost, duplicated or unexpected, no process left\n" : `goals missed:\n${r.missed.map((m) => `  - ${m}`).join("\n")}\n`);
}

function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

function parse(argv) {
	const o = { seconds: 60, pieces: 1_000 };
	for (let i = 0; i < argv.length; i++) {
		if (argv[i] === "--seconds") o.seconds = Number(argv[++i]);
		else if (argv[i] === "--pieces") o.pieces = Number(argv[++i]);
		else {
			console.error(`npm run load: unknown option ${argv[i]} (--seconds N, --pieces N)`);
			process.exit(2);
		}
	}
	if (!(o.seconds > 0)) throw new Error("--seconds must be a positive number");
	if (!Number.isInteger(o.pieces) || o.pieces < 1) throw new Error("--pieces must be a whole number of at least 1");
	return o;
}
