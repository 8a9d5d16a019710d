import { json, type IRequest } from "itty-router";
import { logError } from "../log";
import { oneOffMessage } from "../messages";
import { changedFields } from "../policy/audit";
import { withAdminAction } from "../policy/history";
import { heartbeatMs, lastRunMaxLagMs } from "../policy/record";
import { withEnabled } from "../policy/schedule";
import type { PieceEntry, PieceRef } from "../registry/entry";
import { KV_LIST_LIMIT, deleteEntry, getEntry, isWriteRateLimited, listPieces, putEntry } from "../registry/store";
import { patchSchema, spaceSchema } from "../schema";
import { logAdminChange } from "./audit";
import { adminLabel, adminOf } from "./auth";
import { StatusError } from "./errors";
import { parse, pieceParams, readJson } from "./input";

/** Default page size of the admin list. */
export const DEFAULT_PAGE_SIZE = 100;

/** What the API adds to a stored piece: whether it is enabled, and how stale lastRun may be. */
function view<P extends Pick<PieceEntry, "status" | "failures" | "disabledAt">>(piece: P, env: Env) {
	return { ...piece, enabled: piece.disabledAt === 0, lastRunMaxLagMs: lastRunMaxLagMs(piece, heartbeatMs(env.HEARTBEAT_MINUTES)) };
}

/** `GET /api/integrations/bg/:space/:pieceId`: one piece's whole entry. */
export async function getPiece(request: IRequest, env: Env): Promise<PieceEntry & { enabled: boolean; lastRunMaxLagMs: number }> {
	return view(await load(env, pieceParams(request.params)), env);
}

/**
 * `GET /api/integrations/bg?limit=&cursor=&space=`: one page of pieces from KV list metadata
 * (no read per piece). `limit` is 1–1,000, KV's page size; follow `cursor` for more.
 */
export async function listPiecesRoute(request: IRequest, env: Env) {
	const query = request.query as Record<string, string | string[] | undefined>;
	const limit = single(query.limit, "limit") ?? String(DEFAULT_PAGE_SIZE);
	if (!/^\d+$/.test(limit) || Number(limit) < 1 || Number(limit) > KV_LIST_LIMIT) {
		throw new StatusError(400, `limit must be a whole number from 1 to ${KV_LIST_LIMIT}`);
	}
	const spaceParam = single(query.space, "space");
	const space = spaceParam === undefined ? undefined : parse(spaceSchema, spaceParam);
	const cursor = single(query.cursor, "cursor");
	let page;
	try {
		page = await listPieces(env, { space, cursor, limit: Number(limit) });
	} catch (error) {
		// KV rejects a cursor it did not issue; that is the caller's mistake, not ours.
		if (cursor) {
			logError("list-bad-cursor", error);
			throw new StatusError(400, "cursor is not valid; start again without it");
		}
		throw error;
	}
	return {
		success: true,
		pieces: page.pieces.map((piece) => view(piece, env)),
		cursor: page.cursor ?? null,
		complete: !page.cursor,
	};
}

/**
 * `PATCH /api/integrations/bg/:space/:pieceId` with `{"enabled": true|false}`. A change is
 * written with the action in the piece's history; asking for the state it is already in
 * writes nothing, and its audit event says so with no `changes`.
 */
export async function patchPiece(request: IRequest, env: Env) {
	const admin = adminOf(request);
	const ref = pieceParams(request.params);
	const { enabled } = parse(patchSchema, await readJson(request));
	const entry = await load(env, ref);
	const now = Date.now();
	const changed = withEnabled(entry, enabled, now);
	const action = enabled ? "enable" : "disable";
	const next = changed === entry ? entry : withAdminAction(changed, action, adminLabel(admin), now);
	if (next !== entry) await putEntry(env, next);
	logAdminChange(admin, action, ref, changedFields(entry, changed));
	return { success: true, message: `Piece ${label(ref)} ${enabled ? "enabled" : "disabled"}`, piece: view(next, env) };
}

/**
 * `DELETE /api/integrations/bg/:space/:pieceId`: forget the piece; queued runs for it are
 * dropped. Its history goes with it: the audit event, with every field it had, is the record.
 */
export async function deletePiece(request: IRequest, env: Env) {
	const admin = adminOf(request);
	const ref = pieceParams(request.params);
	const entry = await load(env, ref);
	await deleteEntry(env, ref);
	logAdminChange(admin, "delete", ref, changedFields(entry, null));
	return { success: true, message: `Piece ${label(ref)} deleted` };
}

/**
 * KV takes one write per second per key: a run-now's history line is written just before its
 * run is queued, and the run is delivered this much later, so the run's own write never comes
 * within the same second.
 */
const RUN_NOW_DELAY_SECONDS = 1;

/**
 * `POST /api/integrations/bg/:space/:pieceId/run`: queue a run now, outside the tick. The
 * request goes into the piece's history first (its one write, best effort: a piece written a
 * moment ago keeps its history as it is, and the audit event still records the request).
 */
export async function runPieceNow(request: IRequest, env: Env) {
	const admin = adminOf(request);
	const ref = pieceParams(request.params);
	const entry = await load(env, ref);
	if (entry.disabledAt !== 0) throw new StatusError(409, "piece is disabled; enable it first");
	const now = Date.now();
	const message = oneOffMessage("manual", entry, now);
	let recorded = true;
	try {
		await putEntry(env, withAdminAction(entry, "run-now", adminLabel(admin), now));
	} catch (error) {
		if (!isWriteRateLimited(error)) throw error;
		recorded = false;
	}
	await env.RUNS.send(message, { contentType: "json", delaySeconds: RUN_NOW_DELAY_SECONDS });
	logAdminChange(admin, "run-now", ref, {}, { runId: message.runId, ...(recorded ? {} : { history: "not recorded: the piece was written a moment ago" }) });
	return json({ success: true, message: `Run of ${label(ref)} queued`, runId: message.runId }, { status: 202 });
}

async function load(env: Env, ref: PieceRef): Promise<PieceEntry> {
	const entry = await getEntry(env, ref);
	if (!entry) throw new StatusError(404, `piece ${label(ref)} is not registered`);
	return entry;
}

function label(ref: PieceRef): string {
	return `${ref.space}/${ref.pieceId}`;
}

function single(value: string | string[] | undefined, name: string): string | undefined {
	if (Array.isArray(value)) throw new StatusError(400, `${name} must be given once`);
	return value;
}
