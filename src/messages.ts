import { slotOf } from "./policy/schedule";
import type { PieceEntry } from "./registry/entry";
import type { RunMessage } from "./schema";

type Runnable = Pick<PieceEntry, "space" | "pieceId" | "integration">;

/**
 * A tick's run message. Its runId is derived from the tick and the piece, so a tick fired
 * twice for the same minute produces the same runId and the consumer runs it once.
 */
export function tickMessage(piece: Runnable, tickTime: number): RunMessage {
	return {
		v: 1,
		kind: "tick",
		space: piece.space,
		pieceId: piece.pieceId,
		integration: piece.integration,
		runId: `tick:${tickTime}:${piece.space}/${piece.pieceId}`,
		scheduledTime: tickTime,
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
