/**
 * What the CLI prints for people (`--json` prints the Worker's answers as they are): pieces
 * as a table, one piece as fields, with short ids and relative times. The state of a piece is
 * the Worker's own rule (src/policy/state.ts), so the CLI, the dashboard and /api/stats agree.
 */
import { pieceState } from "../src/policy/state";

/** A listed or read piece, as the API answers it (only what is shown). */
export interface ShownPiece {
	space: string;
	pieceId: string;
	integration: string;
	status: string;
	failures: number;
	disabledAt: number;
	lastRun: number;
	lastSuccessAt?: number;
	nextRunAt: number;
	createdAt: number;
	lastRunMaxLagMs?: number;
	lastError?: string;
	history?: { at: number; outcome: string; durationMs: number; error?: string }[];
}

/** `3 min ago`, `in 20 s`, `never`. */
export function relativeTime(time: number, now = Date.now()): string {
	if (!time) return "never";
	const seconds = Math.round((time - now) / 1000);
	const abs = Math.abs(seconds);
	const [value, unit] = abs < 60 ? [abs, "s"] : abs < 3600 ? [Math.round(abs / 60), "min"] : abs < 86_400 ? [Math.round(abs / 3600), "h"] : [Math.round(abs / 86_400), "d"];
	if (abs < 5) return "just now";
	return seconds < 0 ? `${value} ${unit} ago` : `in ${value} ${unit}`;
}

/** `did:key:z6MkhaXg…2doK`, `fid1:abcdef…NOPQ`. */
export function shortId(id: string): string {
	const body = id.replace(/^(did:key:|fid1:)/, "");
	const prefix = id.slice(0, id.length - body.length);
	return body.length <= 14 ? id : `${prefix}${body.slice(0, 8)}…${body.slice(-4)}`;
}

/** A recorded time of a steady piece: within its heartbeat it ran every minute, whatever was last recorded. */
function recorded(piece: ShownPiece, time: number, now: number): string {
	if (time && piece.lastRunMaxLagMs && now - time < piece.lastRunMaxLagMs) return "every minute";
	return relativeTime(time, now);
}

function clip(text: string, length: number): string {
	const chars = Array.from(text.replace(/\s+/g, " "));
	return chars.length <= length ? chars.join("") : `${chars.slice(0, length - 1).join("")}…`;
}

/** Rows as aligned columns, the header first. */
export function table(header: string[], rows: string[][]): string {
	const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => Array.from(row[i] ?? "").length)));
	const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell + " ".repeat(widths[i]! - Array.from(cell).length))).join("  ");
	return [line(header), ...rows.map(line)].join("\n");
}

/** Pieces as a table; `more` says how to see the rest. */
export function piecesTable(pieces: ShownPiece[], more: string | null, now = Date.now()): string {
	if (!pieces.length) return "No pieces.";
	const rows = pieces.map((p) => [
		pieceState(p),
		shortId(p.space),
		shortId(p.pieceId),
		p.integration,
		recorded(p, p.lastRun, now),
		recorded(p, p.lastSuccessAt ?? 0, now),
		String(p.failures),
		clip(p.status, 60),
	]);
	const text = table(["STATE", "SPACE", "PIECE", "INTEGRATION", "LAST ATTEMPT", "LAST SUCCESS", "FAILURES", "STATUS"], rows);
	return more ? `${text}\n${more}` : text;
}

/** One piece's fields and recent runs. */
export function pieceDetail(p: ShownPiece, now = Date.now()): string {
	const at = (time: number) => (time ? `${recorded(p, time, now)} (${new Date(time).toISOString()})` : "never");
	const fields: [string, string][] = [
		["space", p.space],
		["piece", p.pieceId],
		["integration", p.integration],
		["state", pieceState(p)],
		["status", p.status],
		["failures", String(p.failures)],
		["last attempt", at(p.lastRun)],
		["last success", at(p.lastSuccessAt ?? 0)],
		["next run", p.disabledAt ? "— (disabled)" : p.nextRunAt > now ? at(p.nextRunAt) : "the next tick"],
		["registered", at(p.createdAt)],
	];
	if (p.lastError) fields.push(["last error", p.lastError]);
	const width = Math.max(...fields.map(([name]) => name.length));
	const lines = fields.map(([name, value]) => `${name.padEnd(width)}  ${value}`);
	const runs = [...(p.history ?? [])].reverse().slice(0, 10);
	if (runs.length) {
		lines.push("", "recent runs:");
		for (const run of runs) lines.push(`  ${relativeTime(run.at, now).padEnd(12)} ${run.outcome.padEnd(11)} ${`${run.durationMs} ms`.padEnd(9)} ${run.error ?? ""}`.trimEnd());
	}
	return lines.join("\n");
}

/** An answer with a message (`{success, message}`): the message; else the answer as JSON. */
export function messageOf(answer: unknown): string {
	if (answer && typeof answer === "object" && "message" in answer && typeof answer.message === "string") {
		const runId = "runId" in answer && typeof answer.runId === "string" ? ` (${answer.runId})` : "";
		return `${answer.message}${runId}`;
	}
	return JSON.stringify(answer, null, 2);
}
