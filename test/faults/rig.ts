import { createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { handleQueue } from "../../src/consumer";
import type { ConsumerEnv } from "../../src/delivery";
import type { PieceEntry } from "../../src/registry/entry";
import { getEntry } from "../../src/registry/store";
import type { RunMessage } from "../../src/schema";
import { fanOutTick, recordingQueue } from "../recording-queue";

/** One tick: the real fan-out (messages recorded), then the consumer on them as one batch, with `consumerEnv`. */
export async function tick(time: number, consumerEnv: ConsumerEnv, attempts = 1): Promise<RunMessage[]> {
	const queue = recordingQueue();
	await fanOutTick({ REGISTRY: env.REGISTRY, RUNS: queue as unknown as Queue }, time);
	if (queue.sent.length) {
		const batch = createMessageBatch("bg-piece-runs", queue.sent.map((body, i) => ({ id: `${time}-${i}`, timestamp: time, attempts, body })));
		await handleQueue(batch, consumerEnv);
	}
	return queue.sent;
}

/** The pieces' entries as stored now. */
export function entries(pieces: PieceEntry[]): Promise<PieceEntry[]> {
	return Promise.all(pieces.map(async (piece) => (await getEntry(env, piece))!));
}

/** Never settles until the caller gives up (its abort signal), as a silent connection does. */
export function untilAborted(init: RequestInit): Promise<never> {
	return new Promise((_, reject) => init.signal?.addEventListener("abort", () => reject(init.signal?.reason), { once: true }));
}
