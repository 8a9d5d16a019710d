import type { IRequest } from "itty-router";
import { logError, logEvent } from "../log";
import { oneOffMessage } from "../messages";
import { registered } from "../policy/schedule";
import { KV_WRITE_INTERVAL_MS, getEntry, isWriteRateLimited, putEntry } from "../registry/store";
import { registrationSchema } from "../schema";
import { requireRoomInSpace } from "./access";
import { parse, readJson } from "./input";

/**
 * `POST /api/integrations/bg`: an upsert on (space, pieceId). A new piece starts as
 * `Initializing` and runs at once; a known one is re-enabled (`Re-initializing`). OAuth
 * callbacks repeat it often and concurrently: the key is the pair, so it stays one entry.
 */
export async function register(request: IRequest, env: Env): Promise<{ success: true; message: string }> {
	const input = parse(registrationSchema, await readJson(request));
	const now = Date.now();
	const piece = `${input.space}/${input.pieceId}`;
	const existing = await getEntry(env, input);
	if (!existing) await requireRoomInSpace(env, input.space);
	// A repeat within KV's one-write-per-second-per-key interval changes nothing worth writing.
	if (existing && existing.disabledAt === 0 && existing.integration === input.integration && now - existing.updatedAt < KV_WRITE_INTERVAL_MS) {
		return { success: true, message: `Piece ${piece} is registered` };
	}
	const entry = registered(existing, input, now);
	try {
		await putEntry(env, entry);
	} catch (error) {
		// Concurrent registrations of one pair all write the same key, and KV refuses more than
		// one write per second per key. If another request's identical write landed, the piece
		// is registered; otherwise the refusal reaches the error handler (429, try again).
		if (!isWriteRateLimited(error)) throw error;
		const landed = await getEntry(env, input);
		if (!landed || landed.disabledAt !== 0 || landed.integration !== input.integration) throw error;
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
