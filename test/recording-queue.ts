import { fanOutLane, laneStart, type FanoutEnv, type FanoutLimits } from "../src/fanout";
import type { Clock } from "../src/util/pace";
import type { RunMessage } from "../src/schema";

/**
 * A FAKE queue producer for fan-out tests that count messages without running them. It
 * enforces the real sendBatch limits (≤ 100 messages, ≤ 256 KB) so a fan-out that breaks
 * them fails here as it would on Cloudflare. `failCalls` makes chosen calls throw; `onSend`
 * stamps each send with a test's clock.
 */
export function recordingQueue(options: { failCalls?: number[]; onSend?: () => number } = {}) {
	const sent: RunMessage[] = [];
	const delays: (number | undefined)[] = [];
	const sentAt: number[] = [];
	let calls = 0;
	const queue = {
		sent,
		/** The delaySeconds each message was sent with, in the order of `sent`. */
		delays,
		/** When each message was sent, by `onSend` (a test's clock), in the order of `sent`. */
		sentAt,
		get calls() {
			return calls;
		},
		async send(body: RunMessage) {
			sent.push(body);
		},
		async sendBatch(messages: Iterable<MessageSendRequest<RunMessage>>) {
			const batch = [...messages];
			const index = calls++;
			if (batch.length > 100) throw new Error(`sendBatch of ${batch.length} messages: the limit is 100`);
			const bytes = new TextEncoder().encode(JSON.stringify(batch.map((m) => m.body))).length;
			if (bytes > 256 * 1024) throw new Error(`sendBatch of ${bytes} bytes: the limit is 256 KB`);
			if (options.failCalls?.includes(index)) throw new Error("injected send failure");
			sent.push(...batch.map((m) => m.body));
			delays.push(...batch.map((m) => m.delaySeconds));
			const at = options.onSend?.() ?? Date.now();
			sentAt.push(...batch.map(() => at));
		},
	};
	return queue;
}

/**
 * A whole tick's fan-out through lane 0 alone (every shard, as with one run queue), starting
 * now: what `handleScheduled` does, without the last-tick write and the hand-over.
 */
export function fanOutTick(env: FanoutEnv, tickTime: number, limits?: FanoutLimits, clock?: Clock) {
	return fanOutLane(env, laneStart(tickTime, clock?.now() ?? Date.now(), 0), limits, clock);
}
