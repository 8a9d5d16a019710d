// The dashboard: a thin client of the admin API (docs/openapi: GET /api/openapi.json).
// No framework and nothing from outside this Worker; the admin token lives in sessionStorage,
// so it is kept for this tab only and gone when the tab closes.

const TOKEN_KEY = "bg-admin-token";
const PAGE_SIZE = 100;
// Pieces per list request: the API's maximum. `?listPage=` lowers it (the tests use it to
// follow the list cursor over a handful of pieces).
const LIST_PAGE = Math.min(1000, Number(new URLSearchParams(location.search).get("listPage")) || 1000);
// Relative URLs throughout: the dashboard works at / and under any BASE_PATH alike.
const API = "api/integrations/bg";

const $ = (selector, root = document) => root.querySelector(selector);
const state = { pieces: [], sort: { key: "status", dir: 1 }, page: 0, stats: null };

// ---------------------------------------------------------------- API

class ApiError extends Error {
	constructor(status, message) {
		super(message);
		this.status = status;
	}
}

async function api(path, init = {}) {
	const token = sessionStorage.getItem(TOKEN_KEY) ?? "";
	const response = await fetch(path, { ...init, headers: { ...init.headers, authorization: `Bearer ${token}` } });
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

/** The replaced admin's colours: green success, amber unknown or initialising, grey disabled by hand, red failing or disabled by errors. */
export function stateOf(piece) {
	if (piece.disabledAt) return piece.status === "Disabled via UI" ? "disabled" : "failing";
	if (piece.failures > 0) return "failing";
	return piece.status === "Success" ? "ok" : "pending";
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

function lastRunText(piece) {
	if (!piece.lastRun) return { text: "never", title: "" };
	const text = relative(piece.lastRun);
	if (!piece.lastRunMaxLagMs) return { text, title: new Date(piece.lastRun).toLocaleString() };
	const minutes = Math.round(piece.lastRunMaxLagMs / 60000);
	return {
		text: `${text} (recorded)`,
		title: `Recorded ${new Date(piece.lastRun).toLocaleString()}. A piece that keeps succeeding runs every minute but records its last run only every ${minutes - 1} minutes, so this may lag by up to ${minutes} minutes.`,
	};
}

function nextRunText(piece) {
	if (piece.disabledAt) return "—";
	if (!piece.nextRunAt || piece.nextRunAt <= Date.now()) return "next tick";
	return relative(piece.nextRunAt);
}

function renderCounts() {
	const counts = { total: state.pieces.length, enabled: 0, failing: 0, disabled: 0 };
	for (const piece of state.pieces) {
		if (!piece.disabledAt) counts.enabled++;
		else counts.disabled++;
		if (stateOf(piece) === "failing") counts.failing++;
	}
	for (const [key, value] of Object.entries(counts)) $(`[data-count="${key}"]`).textContent = value.toLocaleString("en");
	const tick = state.stats?.lastTick;
	const hour = state.stats?.lastHour;
	$("#tick").textContent = tick
		? `Last tick ${relative(tick.scheduledTime)}: ${tick.dispatched.toLocaleString("en")} dispatched of ${tick.listed.toLocaleString("en")} listed, in ${tick.ms.toLocaleString("en")} ms` +
			` · last hour: ${plural(hour.dispatched, "run")} dispatched, ${plural(hour.failedPieces, "piece")} failed`
		: "No tick recorded yet.";
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
	const value = (p) => (key === "status" ? STATE_ORDER[stateOf(p)] : p[key]);
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
	$(".dot", row).dataset.state = stateOf(piece);
	$(".status", row).textContent = piece.status;
	for (const [selector, id] of [[".space", piece.space], [".piece", piece.pieceId]]) {
		$(selector, row).textContent = shortId(id);
		$(selector, row).title = id;
	}
	$(".integration", row).textContent = piece.integration;
	const last = lastRunText(piece);
	$(".last-run", row).textContent = last.text;
	$(".last-run", row).title = last.title;
	$(".failures", row).textContent = String(piece.failures);
	$(".next-run", row).textContent = nextRunText(piece);
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

async function refresh() {
	say("Loading…");
	try {
		const [pieces, stats] = await Promise.all([loadAllPieces((n) => say(`Loading… ${n.toLocaleString("en")} pieces`)), api("api/stats")]);
		state.pieces = pieces;
		state.stats = stats;
		render();
		say(`Updated ${new Date().toLocaleTimeString()}.`);
	} catch (error) {
		handleError(error);
	}
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
			if (!confirm(`Delete ${piece.space}/${piece.pieceId}? It stops running and its history is lost.`)) return;
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

async function showDetail(piece) {
	const dialog = $("#detail");
	let entry = piece;
	try {
		entry = await api(piecePath(piece));
	} catch (error) {
		return handleError(error);
	}
	$("#detail-title").textContent = entry.pieceId;
	const fields = [
		["Space", entry.space],
		["Integration", entry.integration],
		["Status", entry.status],
		["Failures", entry.failures],
		["Last run", lastRunText(entry).text],
		["Last success", entry.lastSuccessAt ? relative(entry.lastSuccessAt) : "never"],
		["Next run", nextRunText(entry)],
		["Registered", new Date(entry.createdAt).toLocaleString()],
		["Last error", entry.lastError || "—"],
	];
	$("#detail-fields").replaceChildren(...fields.flatMap(([name, value]) => [Object.assign(document.createElement("dt"), { textContent: name }), Object.assign(document.createElement("dd"), { textContent: String(value) })]));
	const runs = [...(entry.history ?? [])].reverse();
	$("#history tbody").replaceChildren(
		...(runs.length
			? runs.map((run) => {
					const row = document.createElement("tr");
					row.dataset.outcome = run.outcome;
					for (const text of [new Date(run.at).toLocaleString(), run.outcome, `${run.durationMs} ms`, run.error ?? ""]) row.append(Object.assign(document.createElement("td"), { textContent: text }));
					return row;
				})
			: [Object.assign(document.createElement("tr"), { innerHTML: '<td colspan="4">No runs recorded yet.</td>' })]),
	);
	dialog.showModal();
}

function handleError(error) {
	if (error.status === 401 || error.status === 503) {
		if (error.status === 401) sessionStorage.removeItem(TOKEN_KEY);
		showLogin(error.status === 401 ? "Wrong admin token." : `The admin API is off: ${error.message}`);
		return;
	}
	say(error.message ?? String(error), true);
}

// ---------------------------------------------------------------- wiring

function showLogin(problem = "") {
	$("#board").hidden = true;
	$("#sign-out").hidden = true;
	$("#login").hidden = false;
	$("#login-error").hidden = !problem;
	$("#login-error").textContent = problem;
	$("#token").focus();
}

function showBoard() {
	$("#login").hidden = true;
	$("#board").hidden = false;
	$("#sign-out").hidden = false;
	refresh();
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
$("#refresh").addEventListener("click", refresh);
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

if (sessionStorage.getItem(TOKEN_KEY)) showBoard();
else showLogin();
