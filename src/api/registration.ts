import type { IRequest } from "itty-router";
import { logError, logEvent } from "../log";
import { oneOffMessage } from "../messages";
import { NOT_FOUND_STATUS, heldUntil, registered } from "../policy/schedule";
import type { PieceEntry } from "../registry/entry";
import { KV_WRITE_INTERVAL_MS, getEntry, isWriteRateLimited, putEntry } from "../registry/store";
import { registrationSchema } from "../schema";
import { requireRoomInRegistry, requireRoomInSpace } from "./access";
import { retryLater } from "./errors";
import { parse, readJson } from "./input";

/** A registration's fields, as validated. */
type Registration = Pick<PieceEntry, "space" | "pieceId" | "integration">;

/** What a registration answers. */
export interface Registered {
	success: true;
	message: string;
}

/**
 * Registrations under way in this isolate, by pair and integration: a burst of identical
 * ones (OAuth callbacks, a reloading shell) shares the first one's reads and write instead of
 * each reading a stale entry and writing it again. Across isolates KV's one write per second
 * per key refuses the extra writes, which `upsert` takes as registered.
 */
const underWay = new Map<string, Promise<Registered>>();

/**
 * `POST /api/integrations/bg`: an upsert on (space, pieceId). A new piece starts as
 * `Initializing` and runs at once; a known one is re-enabled (`Re-initializing`). OAuth
 * callbacks repeat it often and concurrently: the key is the pair, so it stays one entry, and
 * a flood of one pair costs at most one KV write a second.
 */
export async function register(request: IRequest, env: Env): Promise<Registered> {
	const input = parse(registrationSchema, await readJson(request));
	const key = `${input.space}/${input.pieceId}#${input.integration}`;
	const going = underWay.get(key);
	if (going) return going;
	const answer = upsert(input, env);
	underWay.set(key, answer);
	try {
		return await answer;
	} finally {
		underWay.delete(key);
	}
}

/** The registration itself: checks, then at most one write. */
async function upsert(input: Registration, env: Env): Promise<Registered> {
	const now = Date.now();
	const piece = `${input.space}/${input.pieceId}`;
	const existing = await getEntry(env, input);
	if (!existing) {
		// The global cap first: one KV read, where the space's cap lists that space.
		await requireRoomInRegistry(env);
		await requireRoomInSpace(env, input.space);
	}
	// A piece the runtime found missing is re-enabled at most once a hold (an hour), so a
	// registration loop cannot keep junk running; this answer writes nothing.
	const held = existing && heldUntil(existing, now);
	if (existing && held) {
		throw retryLater(409, `piece ${piece} stays disabled: ${NOT_FOUND_STATUS} at ${new Date(existing.disabledAt).toISOString()}; a registration may enable it again from ${new Date(held).toISOString()}`, (held - now) / 1000);
	}
	// A repeat within KV's one-write-per-second-per-key interval changes nothing worth
	// writing; a change is written (KV may refuse it: 429 below).
	if (existing && unchanged(existing, input) && now - existing.updatedAt < KV_WRITE_INTERVAL_MS) return { success: true, message: `Piece ${piece} is registered` };
	const entry = registered(existing, input, now);
	try {
		await putEntry(env, entry);
	} catch (error) {
		// Concurrent registrations of one pair in other isolates write the same key, and KV
		// refuses more than one write per second per key. If another request's identical write
		// landed, the piece is registered; otherwise the refusal reaches the error handler (429).
		if (!isWriteRateLimited(error)) throw error;
		const landed = await getEntry(env, input);
		if (!landed || !unchanged(landed, input)) throw error;
		logEvent("register", { piece, integration: input.integration, outcome: "concurrent" });
		return { success: true, message: `Piece ${piece} is registered` };
	}
	const runsNow = !existing || existing.disabledAt !== 0;
	if (runsNow) {
		try {
			await env.RUNS.send(oneOffMessage("register", entry, now), { contentType: "json" });
		} catch (error) {
			// Not fatal: the entry is due (nextRunAt 0), so the next tick runs it.
			logError("register-send-failed", error, { piece });
		}
	}
	logEvent("register", { piece, integration: input.integration, outcome: existing ? "re-registered" : "created" });
	return { success: true, message: existing ? `Re-registered piece ${piece}` : `Registered piece ${piece}` };
}

/** Whether a registration would leave the stored entry as it is: enabled, same integration. */
function unchanged(entry: PieceEntry, input: Registration): boolean {
	return entry.disabledAt === 0 && entry.integration === input.integration;
}
