// The dashboard: a thin client of the admin API (docs/openapi: GET /api/openapi.json).
// No framework and nothing from outside this Worker; the admin token lives in sessionStorage,
// so it is kept for this tab only and gone when the tab closes. Behind Cloudflare Access no
// token is needed: the page's requests carry Access's cookie and reach the Worker signed in,
// so the page tries the API first and asks for a token only when it answers 401.

const TOKEN_KEY = "bg-admin-token";
const PAGE_SIZE = 100;
// Pieces per list request: the API's maximum. `?listPage=` lowers it (the tests use it to
// follow the list cursor over a handful of pieces).
const LIST_PAGE = Math.min(1000, Number(new URLSearchParams(location.search).get("listPage")) || 1000);
// The page refreshes itself this often (seconds); `?refresh=` changes it (the tests use 2).
const REFRESH_SECONDS = Math.max(1, Number(new URLSearchParams(location.search).get("refresh")) || 30);
// Relative URLs throughout: the dashboard works at / and under any BASE_PATH alike.
const API = "api/integrations/bg";

const $ = (selector, root = document) => root.querySelector(selector);
const state = { pieces: [], sort: { key: "status", dir: 1 }, page: 0, stats: null, updatedAt: 0, loading: false };

// ---------------------------------------------------------------- API

class ApiError extends Error {
	constructor(status, message) {
		super(message);
		this.status = status;
	}
}

async function api(path, init = {}) {
	const token = sessionStorage.getItem(TOKEN_KEY);
	const response = await fetch(path, { ...init, headers: { ...init.headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
	const body = await response.json().catch(() => ({}));
	if (!response.ok) throw new ApiError(response.status, body.error ?? `HTTP ${response.status}`);
	return body;
}

/** Every piece, following the list cursor page by page (1,000 a page: KV's list limit). */
async function loadAllPieces(onProgress) {
	const pieces = [];
	let cursor = null;
	do {
		const query = new URLSearchParams({ limit: String(LIST_PAGE) });
		if (cursor) query.set("cursor", cursor);
		const page = await api(`${API}?${query}`);
		pieces.push(...page.pieces);
		cursor = page.cursor;
		onProgress(pieces.length);
	} while (cursor);
	return pieces;
}

const piecePath = (p) => `${API}/${encodeURIComponent(p.space)}/${encodeURIComponent(p.pieceId)}`;

// ---------------------------------------------------------------- presentation

/**
 * One state per piece, never two, so counts and filters agree (src/policy/state.ts has the same
 * rule): disabled (it will not run), else failing (failed, runs again), else ok or pending.
 */
export function stateOf(piece) {
	if (piece.disabledAt) return "disabled";
	if (piece.failures > 0) return "failing";
	return piece.status === "Success" ? "ok" : "pending";
}

/** The dot, in the replaced admin's colours: a piece its failures disabled is red, one an operator disabled grey. */
function dotOf(piece) {
	return piece.disabledAt && piece.status !== "Disabled via UI" ? "failing" : stateOf(piece);
}

const OUTCOMES = { s: "success", f: "failure", d: "disabled", u: "runtime unavailable", k: "skipped (busy)" };
const ADMIN_ACTIONS = { enable: "enabled by an admin", disable: "disabled by an admin", "run-now": "run requested", import: "imported" };

/** Who did an admin action, as the history names them (`access:<email>`, `access-service-token:<id>`, `token:<fingerprint>`). */
function byText(by = "") {
	const [via, ...rest] = by.split(":");
	const who = rest.join(":");
	return { access: who, "access-service-token": `service token ${who}`, token: `admin token ${who}` }[via] ?? by;
}
const STATE_ORDER = { failing: 0, pending: 1, disabled: 2, ok: 3 };

function relative(time, now = Date.now()) {
	const seconds = Math.round((time - now) / 1000);
	const abs = Math.abs(seconds);
	const [value, unit] = abs < 45 ? [seconds, "second"] : abs < 2700 ? [Math.round(seconds / 60), "minute"] : abs < 79200 ? [Math.round(seconds / 3600), "hour"] : [Math.round(seconds / 86400), "day"];
	if (unit === "second" && abs < 5) return "just now";
	return new Intl.RelativeTimeFormat("en", { numeric: "auto" }).format(value, unit);
}

const plural = (n, word) => `${n.toLocaleString("en")} ${word}${n === 1 ? "" : "s"}`;

function shortId(id) {
	const body = id.replace(/^(did:key:|fid1:)/, "");
	const prefix = id.slice(0, id.length - body.length);
	return body.length <= 12 ? id : `${prefix}${body.slice(0, 6)}…${body.slice(-4)}`;
}

const exact = (time) => new Date(time).toLocaleString();

/** A time as the page shows it: relative, the exact time on hover. */
function setTime(element, time, text = relative(time)) {
	element.textContent = text;
	element.title = time ? exact(time) : "";
	if (time) element.dateTime = new Date(time).toISOString();
	else element.removeAttribute("datetime");
}

/**
 * A recorded time of a piece that keeps succeeding: it runs every minute but records its runs
 * only every heartbeat (`lastRunMaxLagMs`), so a recorded time within that bound says "every
 * minute" rather than an age that looks stuck; past the bound the age shows as it is.
 */
function recordedTime(piece, time) {
	if (!time) return { time: 0, text: "never" };
	if (piece.lastRunMaxLagMs && Date.now() - time < piece.lastRunMaxLagMs) return { time, text: "every minute", note: `recorded ${relative(time)}; a piece that keeps succeeding records its runs every ${Math.round(piece.lastRunMaxLagMs / 60000) - 1} minutes` };
	return { time, text: relative(time) };
}

function setRecorded(element, piece, time) {
	const shown = recordedTime(piece, time);
	setTime(element, shown.time, shown.text);
	if (shown.note) element.title = `${exact(time)}: ${shown.note}`;
}

function setNextRun(element, piece) {
	if (piece.disabledAt) return setTime(element, 0, "—");
	if (!piece.nextRunAt || piece.nextRunAt <= Date.now()) return setTime(element, 0, "next tick");
	setTime(element, piece.nextRunAt);
}

const ISO_TIME = /\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\b/g;

/** A duration in the largest whole unit ("5 minutes"). */
function duration(ms) {
	const units = [["day", 86_400_000], ["hour", 3_600_000], ["minute", 60_000], ["second", 1000]];
	const [unit, size] = units.find(([, size]) => Math.abs(ms) >= size) ?? units.at(-1);
	return plural(Math.max(0, Math.round(ms / size)), unit);
}

/** A status as shown: "since <ISO time>" becomes "for 5 minutes", any other ISO time relative; the whole text on hover. */
function statusText(status) {
	return status.replace(/since (\S+Z)\b/g, (whole, iso) => (Number.isNaN(Date.parse(iso)) ? whole : `for ${duration(Date.now() - Date.parse(iso))}`)).replace(ISO_TIME, (iso) => relative(Date.parse(iso)));
}

/** The strip of recent runs: one coloured mark per recorded outcome, oldest first. */
function renderStrip(cell, recent = "") {
	if (!recent) return void (cell.textContent = "—");
	const marks = Array.from(recent, (code) => {
		const mark = document.createElement("span");
		mark.className = "mark";
		mark.dataset.outcome = code;
		mark.title = OUTCOMES[code] ?? code;
		return mark;
	});
	cell.replaceChildren(...marks);
	cell.setAttribute("aria-label", `recent runs, oldest first: ${marks.map((m) => m.title).join(", ")}`);
}

function renderCounts() {
	const counts = { total: state.pieces.length, enabled: 0, failing: 0, disabled: 0 };
	let byFailures = 0;
	for (const piece of state.pieces) {
		if (!piece.disabledAt) counts.enabled++;
		const pieceState = stateOf(piece);
		if (pieceState === "failing" || pieceState === "disabled") counts[pieceState]++;
		if (dotOf(piece) === "failing" && pieceState === "disabled") byFailures++;
	}
	for (const [key, value] of Object.entries(counts)) $(`[data-count="${key}"]`).textContent = value.toLocaleString("en");
	$("#disabled-by-failures").textContent = byFailures ? `(${byFailures.toLocaleString("en")} by failures)` : "";
	renderChart(state.stats?.lastHour?.perMinute ?? []);
	const tick = state.stats?.lastTick;
	const hour = state.stats?.lastHour;
	$("#tick").textContent = tick
		? `Last tick ${relative(tick.scheduledTime)}: ${tick.dispatched.toLocaleString("en")} dispatched of ${tick.listed.toLocaleString("en")} listed, in ${tick.ms.toLocaleString("en")} ms` +
			` · last hour: ${plural(hour.dispatched, "run")} dispatched, ${plural(hour.failedPieces, "piece")} failed`
		: "No tick recorded yet.";
}

/** The last hour, minute by minute: runs dispatched (green) and pieces failing (red), drawn as SVG bars. */
function renderChart(minutes) {
	const svg = $("#chart-bars");
	const top = Math.max(1, ...minutes.map((m) => Math.max(m.dispatched, m.failed)));
	const width = 600 / Math.max(1, minutes.length);
	const bar = (m, i, value, kind) => {
		const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
		const height = value ? Math.max(2, (value / top) * 78) : 0;
		for (const [name, v] of Object.entries({ x: i * width + (kind === "failing" ? width / 2 : 1), y: 80 - height, width: width / 2 - 1, height })) rect.setAttribute(name, String(v));
		rect.setAttribute("class", kind);
		rect.dataset.minute = String(m.at);
		const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
		title.textContent = `${new Date(m.at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}: ${plural(m.dispatched, "run")} dispatched, ${plural(m.failed, "piece")} failing`;
		rect.append(title);
		return rect;
	};
	svg.replaceChildren(...minutes.flatMap((m, i) => [bar(m, i, m.dispatched, "ok"), bar(m, i, m.failed, "failing")]));
	$("#chart").dataset.runs = String(minutes.reduce((sum, m) => sum + m.dispatched, 0));
	$("#chart").dataset.failed = String(minutes.reduce((sum, m) => sum + m.failed, 0));
}

function fillSelect(select, values, label) {
	const current = select.value;
	select.replaceChildren(new Option(label, ""), ...[...values].sort().map((v) => new Option(v.length > 40 ? shortId(v) : v, v)));
	select.value = values.has(current) ? current : "";
}

function visiblePieces() {
	const search = $("#search").value.trim().toLowerCase();
	const space = $("#space-filter").value;
	const integration = $("#integration-filter").value;
	const wanted = $("#state-filter").value;
	const { key, dir } = state.sort;
	const value = (p) => (key === "status" ? STATE_ORDER[stateOf(p)] : (p[key] ?? 0));
	return state.pieces
		.filter((p) => (!space || p.space === space) && (!integration || p.integration === integration) && (!wanted || stateOf(p) === wanted))
		.filter((p) => !search || p.pieceId.toLowerCase().includes(search) || p.space.toLowerCase().includes(search))
		.sort((a, b) => (value(a) - value(b)) * dir || a.pieceId.localeCompare(b.pieceId));
}

function renderTable() {
	const pieces = visiblePieces();
	const pages = Math.max(1, Math.ceil(pieces.length / PAGE_SIZE));
	state.page = Math.min(state.page, pages - 1);
	const shown = pieces.slice(state.page * PAGE_SIZE, (state.page + 1) * PAGE_SIZE);
	$("#pieces tbody").replaceChildren(...shown.map(renderRow));
	$("#page-info").textContent = pieces.length ? `${state.page * PAGE_SIZE + 1}–${state.page * PAGE_SIZE + shown.length} of ${pieces.length.toLocaleString("en")}` : "No pieces match.";
	$("#prev").disabled = state.page === 0;
	$("#next").disabled = state.page >= pages - 1;
	for (const button of document.querySelectorAll("[data-sort]")) {
		const sort = button.dataset.sort === state.sort.key ? (state.sort.dir > 0 ? "ascending" : "descending") : "none";
		button.closest("th").setAttribute("aria-sort", sort);
	}
}

function renderRow(piece) {
	const row = $("#row").content.firstElementChild.cloneNode(true);
	row.dataset.key = `${piece.space}/${piece.pieceId}`;
	row.dataset.state = stateOf(piece);
	$(".dot", row).dataset.state = dotOf(piece);
	$(".status", row).textContent = statusText(piece.status);
	$(".status", row).title = piece.status;
	for (const [selector, id] of [[".space", piece.space], [".piece", piece.pieceId]]) {
		$(selector, row).textContent = shortId(id);
		$(selector, row).title = id;
	}
	$(".integration", row).textContent = piece.integration;
	setRecorded($(".last-run", row), piece, piece.lastRun);
	setRecorded($(".last-success", row), piece, piece.lastSuccessAt ?? 0);
	renderStrip($(".recent", row), piece.recent);
	$(".failures", row).textContent = String(piece.failures);
	setNextRun($(".next-run", row), piece);
	$('[data-action="toggle"]', row).textContent = piece.disabledAt ? "Enable" : "Disable";
	$('[data-action="run"]', row).disabled = Boolean(piece.disabledAt);
	row.piece = piece;
	return row;
}

function render() {
	renderCounts();
	fillSelect($("#space-filter"), new Set(state.pieces.map((p) => p.space)), "All spaces");
	fillSelect($("#integration-filter"), new Set(state.pieces.map((p) => p.integration)), "All integrations");
	renderTable();
}

function say(text, isError = false) {
	const message = $("#message");
	message.textContent = text;
	message.classList.toggle("error", isError);
}

// ---------------------------------------------------------------- actions

/**
 * Reloads every piece and the stats. `quiet`: the periodic refresh, which says nothing unless it
 * fails; `stats`: stats just fetched (the first load's), so the registry is not counted twice.
 */
async function refresh(quiet = false, stats = null) {
	if (state.loading) return;
	state.loading = true;
	if (!quiet) say("Loading…");
	try {
		const [pieces, latest] = await Promise.all([loadAllPieces((n) => quiet || say(`Loading… ${n.toLocaleString("en")} pieces`)), stats ?? api("api/stats")]);
		state.pieces = pieces;
		state.stats = latest;
		keepingFocus(render);
		state.updatedAt = Date.now();
		showUpdated();
		if (!quiet) say(`Updated ${new Date().toLocaleTimeString()}.`);
	} catch (error) {
		handleError(error);
	} finally {
		state.loading = false;
	}
}

function showUpdated() {
	if (state.updatedAt) setTime($("#updated"), state.updatedAt, `Updated ${relative(state.updatedAt)} · refreshes every ${REFRESH_SECONDS} s`);
}

/** Renders without losing what the user holds: the focused control, the scroll position. */
function keepingFocus(draw) {
	const focused = document.activeElement;
	const key = focused?.closest?.("tr")?.dataset.key;
	const control = focused?.dataset?.action ?? focused?.dataset?.copy ?? (focused?.classList?.contains("piece") ? "piece" : null);
	const scroll = window.scrollY;
	draw();
	window.scrollTo(0, scroll);
	if (!key || !control) return;
	const row = document.querySelector(`tr[data-key="${CSS.escape(key)}"]`);
	const again = row && (control === "piece" ? $(".piece", row) : $(`[data-action="${control}"], [data-copy="${control}"]`, row));
	again?.focus();
}

/** The periodic refresh waits while the user is in the middle of something: a dialog, a selection, a hidden tab. */
function autoRefresh() {
	showUpdated();
	const busy = document.hidden || $("#board").hidden || document.querySelector("dialog[open]") || String(getSelection?.() ?? "").length > 0;
	if (!busy && Date.now() - state.updatedAt >= REFRESH_SECONDS * 1000) refresh(true);
}

const samePiece = (a) => (b) => a.space === b.space && a.pieceId === b.pieceId;

/** Re-reads one piece after an action and updates its row (or removes it, if it is gone). */
async function reload(piece) {
	let fresh = null;
	try {
		fresh = await api(piecePath(piece));
	} catch (error) {
		if (error.status !== 404) throw error;
	}
	// Looked up after the await: a refresh may have replaced the list meanwhile.
	const index = state.pieces.findIndex(samePiece(piece));
	if (index >= 0) fresh ? (state.pieces[index] = fresh) : state.pieces.splice(index, 1);
	render();
}

async function act(action, piece) {
	const label = `${shortId(piece.space)}/${shortId(piece.pieceId)}`;
	try {
		if (action === "toggle") {
			const enabled = Boolean(piece.disabledAt);
			await api(piecePath(piece), { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ enabled }) });
			say(`${enabled ? "Enabled" : "Disabled"} ${label}.`);
		} else if (action === "run") {
			const { runId } = await api(`${piecePath(piece)}/run`, { method: "POST" });
			say(`Run of ${label} queued (${runId}).`);
		} else if (action === "delete") {
			if (!(await confirmDelete(piece))) return say("Kept it.");
			await api(piecePath(piece), { method: "DELETE" });
			state.pieces = state.pieces.filter((p) => !samePiece(piece)(p));
			render();
			return say(`Deleted ${label}.`);
		}
		await reload(piece);
	} catch (error) {
		handleError(error);
	}
}

/** Asks in the page (a modal dialog, Cancel focused) whether to delete; resolves true to delete. */
function confirmDelete(piece) {
	const dialog = $("#confirm");
	$("#confirm-text").textContent = `${piece.space}/${piece.pieceId} stops running and its history is lost.`;
	dialog.returnValue = "";
	dialog.showModal();
	return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true }));
}

async function showDetail(piece) {
	const dialog = $("#detail");
	let entry = piece;
	try {
		entry = await api(piecePath(piece));
	} catch (error) {
		return handleError(error);
	}
	$("#detail-title").textContent = entry.pieceId;
	const time = (set) => {
		const element = document.createElement("time");
		set(element);
		return element;
	};
	const fields = [
		["Space", entry.space],
		["Integration", entry.integration],
		["Status", entry.status],
		["Failures", String(entry.failures)],
		["Last attempt", time((e) => setRecorded(e, entry, entry.lastRun))],
		["Last success", time((e) => setRecorded(e, entry, entry.lastSuccessAt ?? 0))],
		["Next run", time((e) => setNextRun(e, entry))],
		["Registered", time((e) => setTime(e, entry.createdAt))],
		["Last error", entry.lastError || "—"],
	];
	$("#detail-fields").replaceChildren(
		...fields.flatMap(([name, value]) => {
			const dd = document.createElement("dd");
			dd.append(value);
			return [Object.assign(document.createElement("dt"), { textContent: name }), dd];
		}),
	);
	const runs = [...(entry.history ?? [])].reverse();
	$("#history tbody").replaceChildren(
		...(runs.length
			? runs.map((run) => {
					const row = document.createElement("tr");
					row.dataset.outcome = run.outcome;
					const when = document.createElement("td");
					when.append(time((e) => setTime(e, run.at)));
					row.append(when);
					// An admin action sits among the runs: what was done and by whom, no duration.
					const cells = run.outcome === "admin" ? [ADMIN_ACTIONS[run.action] ?? run.action, "—", `by ${byText(run.by)}`] : [run.outcome, `${run.durationMs} ms`, run.error ?? ""];
					for (const text of cells) row.append(Object.assign(document.createElement("td"), { textContent: text }));
					return row;
				})
			: [Object.assign(document.createElement("tr"), { innerHTML: '<td colspan="4">No runs recorded yet.</td>' })]),
	);
	dialog.showModal();
}

function handleError(error) {
	if (error.status === 401 || error.status === 403 || error.status === 503) {
		const hadToken = Boolean(sessionStorage.getItem(TOKEN_KEY));
		if (error.status === 401) sessionStorage.removeItem(TOKEN_KEY);
		// 401 with no token sent is simply the first visit: ask for one, with no complaint.
		const problem = error.status === 401 ? (hadToken ? "Wrong admin token." : "") : error.status === 403 ? error.message : `The admin API is off: ${error.message}`;
		showLogin(problem);
		return;
	}
	say(error.message ?? String(error), true);
}

// ---------------------------------------------------------------- wiring

function showLogin(problem = "") {
	$("#board").hidden = true;
	$("#sign-out").hidden = !sessionStorage.getItem(TOKEN_KEY);
	$("#login").hidden = false;
	$("#login-error").hidden = !problem;
	$("#login-error").textContent = problem;
	$("#token").focus();
}

/** Shows the board and loads it; `stats`: the stats the first request just fetched, if any. */
function showBoard(stats = null) {
	$("#login").hidden = true;
	$("#board").hidden = false;
	// Signed in with Cloudflare Access, there is no token to forget: Access signs out.
	$("#sign-out").hidden = !sessionStorage.getItem(TOKEN_KEY);
	refresh(false, stats);
}

/** First the API as the page stands (a stored token, or Cloudflare Access's sign-in); the token form only if it refuses. */
async function start() {
	let stats = null;
	try {
		stats = await api("api/stats");
	} catch (error) {
		if ([401, 403, 503].includes(error.status)) return handleError(error);
	}
	showBoard(stats);
}

$("#login").addEventListener("submit", (event) => {
	event.preventDefault();
	sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
	$("#token").value = "";
	showBoard();
});
$("#sign-out").addEventListener("click", () => {
	sessionStorage.removeItem(TOKEN_KEY);
	showLogin();
});
$("#refresh").addEventListener("click", () => refresh());
setInterval(autoRefresh, 1000);
for (const id of ["#search", "#space-filter", "#integration-filter", "#state-filter"]) {
	$(id).addEventListener("input", () => {
		state.page = 0;
		renderTable();
	});
}
$("#prev").addEventListener("click", () => (state.page--, renderTable()));
$("#next").addEventListener("click", () => (state.page++, renderTable()));
for (const button of document.querySelectorAll("[data-sort]")) {
	button.addEventListener("click", () => {
		const key = button.dataset.sort;
		state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : key === "lastRun" ? -1 : 1 };
		state.page = 0;
		renderTable();
	});
}
$("#pieces tbody").addEventListener("click", async (event) => {
	const button = event.target.closest("button");
	const row = event.target.closest("tr");
	if (!button || !row?.piece) return;
	if (button.dataset.action) {
		// One request at a time per button: a double click must not queue two runs.
		button.disabled = true;
		await act(button.dataset.action, row.piece);
		button.disabled = false;
		return;
	}
	if (button.dataset.copy) {
		await navigator.clipboard?.writeText(row.piece[button.dataset.copy]).catch(() => {});
		return say(`Copied ${button.dataset.copy === "space" ? "space DID" : "piece id"}.`);
	}
	if (button.classList.contains("piece")) return showDetail(row.piece);
});

start();
