import { seenState } from "./policy/record";
import { slotOf } from "./policy/schedule";
import type { PieceEntry } from "./registry/entry";
import type { ListedPiece } from "./registry/store";
import type { RunMessage } from "./schema";

type Runnable = Pick<PieceEntry, "space" | "pieceId" | "integration">;

/**
 * A tick's run message. Its runId is derived from the tick and the piece, so a tick fired
 * twice for the same minute produces the same runId and the consumer runs it once. It
 * carries the piece's listed state (`seen`), so a run that changes nothing reads no KV, and
 * when it is due (`dueAt`: the time its delay aims at), so a message a period late is known as stale.
 */
export function tickMessage(piece: ListedPiece, tickTime: number, dueAt: number = Date.now()): RunMessage {
	return {
		v: 1,
		kind: "tick",
		space: piece.space,
		pieceId: piece.pieceId,
		integration: piece.integration,
		runId: `tick:${tickTime}:${piece.space}/${piece.pieceId}`,
		scheduledTime: tickTime,
		dueAt,
		seen: seenState(piece),
	};
}

/**
 * A run outside the tick (on registration, or run-now). It belongs to the current minute's
 * slot, so the piece's next run falls on the next tick.
 */
export function oneOffMessage(kind: "register" | "manual", piece: Runnable, now: number): RunMessage {
	return {
		v: 1,
		kind,
		space: piece.space,
		pieceId: piece.pieceId,
		integration: piece.integration,
		runId: `${kind}:${now}:${crypto.randomUUID()}`,
		scheduledTime: slotOf(now),
	};
}
