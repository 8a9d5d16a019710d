// What `npm start` prints of its Workers' output: one line a person can read per run and per
// event, wrangler's start-up noise left out. The Workers log JSON (for Workers Logs in
// production); LOG_FORMAT=json shows exactly that, every line as wrangler prints it.

/** wrangler's lines that say nothing a user of `npm start` needs. */
const NOISE = [
	/^\s*$/,
	/^\s*⛅️ wrangler/,
	/^─+$/,
	/^Your Worker has access to the following bindings:/,
	/^Binding\s+Resource\s+Mode/,
	/^env\.\S+ .*\s(local|remote)$/,
	/^❓ Your types might be out of date/,
	/^⎔ /,
	/^Using secrets defined in /,
	/✨ Parsed \d+ valid header rules?\./,
	/^\[wrangler:info\] Ready on /,
	// Request and queue lines that went well; the events below say what they did.
	/^\[wrangler:info\] (GET|HEAD|POST|PATCH|DELETE|OPTIONS) \S+ [23]\d\d /,
	/^\[wrangler:info\] QUEUE \S+ \d+\/\d+ /,
	/^\[wrangler:info\] (GET|POST) \/cdn-cgi\/local\/scheduled/,
	// Local KV carries list metadata in a header and warns of any non-ASCII in it (a clipped
	// status ends in "…"); Cloudflare's KV takes it as it is, and so does the local one.
	/^A header value for "CF-KV-Metadata" contains non-ASCII characters/,
];

/** An id shortened for a line: `did:key:z6MkhaXg…4mVzx` → `z6MkhaXg…4mVzx`, `fid1:abc…xyz`. */
export function shortId(id) {
	const bare = String(id).replace(/^did:key:/, "");
	return bare.length > 20 ? `${bare.slice(0, bare.startsWith("fid1:") ? 9 : 8)}…${bare.slice(-5)}` : bare;
}

/** `space/pieceId` shortened. */
function shortPiece(piece) {
	const [space = "", pieceId = ""] = String(piece).split("/");
	return `${shortId(space)}/${shortId(pieceId)}`;
}

const time = (at = Date.now()) => new Date(at).toTimeString().slice(0, 8);
const ms = (value) => (typeof value === "number" ? (value >= 10_000 ? `${(value / 1000).toFixed(1)} s` : `${value} ms`) : "");

/** One run's line: time, outcome, short piece, duration, error. */
function runLine(event) {
	const mark = { success: "✓", failure: "✗", disabled: "✗", unavailable: "…", skipped: "↷" }[event.outcome] ?? "·";
	const failures = event.outcome === "failure" ? ` ${event.failures}/3` : "";
	const detail = [ms(event.durationMs), event.kind && event.kind !== "tick" ? `(${event.kind})` : ""].filter(Boolean).join(" ");
	return `${time()} ${mark} ${`${event.outcome}${failures}`.padEnd(11)} ${shortPiece(event.piece)}  ${detail}${event.error ? `: ${event.error}` : ""}`.trimEnd();
}

/** An admin change (the audit trail) as one line: the action, the piece, who, and its status before → after. */
function adminLine(event) {
	const status = event.changes?.status;
	const change = status ? ` (${status[0] ?? "—"} → ${status[1] ?? "deleted"})` : "";
	return `${time()}   ${String(event.action).padEnd(11)} ${shortPiece(event.piece)}  by ${event.by}${change}`;
}

/** A structured event as one line (the run events have their own form). */
function eventLine(event) {
	const { event: name, level, ...rest } = event;
	if (name === "run") return runLine(event);
	if (name === "tick") return `${time(event.scheduledTime)}   tick        ${event.dispatched} dispatched of ${event.listed} listed${event.failed ? `, ${event.failed} failed to send` : ""} (${ms(event.ms)})`;
	if (name === "register") return `${time()}   ${`registered`.padEnd(11)} ${shortPiece(event.piece)}  ${event.integration} (${event.outcome})`;
	if (name === "admin-change") return adminLine(event);
	// A dispatch every run of which the runtime took says nothing the run lines will not.
	if (name === "dispatch" && event.accepted === event.runs) return null;
	if (name === "reports" && event.recorded === event.reports) return null;
	if (name === "reference-run") return null;
	const fields = Object.entries(rest)
		.map(([key, value]) => `${key}=${key === "piece" ? shortPiece(value) : typeof value === "string" ? value : JSON.stringify(value)}`)
		.join(" ");
	return `${time()} ${level === "error" ? "!" : " "} ${String(name).padEnd(11)} ${fields}`.trimEnd();
}

/**
 * The line to print for one line of a Worker's output, or null to leave it out. `tag` names
 * the Worker (the reference runtime's lines say `[runtime]`).
 */
export function formatLine(line, tag = "") {
	if (NOISE.some((pattern) => pattern.test(line))) return null;
	const success = /^Successfully executed piece (\S+)$/.exec(line);
	// The replaced service's success line, which users watch for, with its ids shortened.
	if (success) return `${time()} ✓ success     ${shortPiece(success[1])}  Successfully executed piece`;
	if (line.startsWith("{")) {
		let event;
		try {
			event = JSON.parse(line);
		} catch {}
		if (event && typeof event.event === "string") {
			const formatted = eventLine(event);
			return formatted && `${tag}${formatted}`;
		}
	}
	return `${tag}${line}`;
}
