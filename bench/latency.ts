/**
 * BENCHMARK HARNESS ONLY: the run durations the bench runtime (bench/runtime.ts) simulates
 * with `npm run bench -- --latency MEDIAN:P99`. Durations are log-normal: ln(d) is normal
 * with mean mu = ln(median) and standard deviation sigma = ln(p99 / median) / 2.326 (2.326
 * is the standard normal's 99th percentile). Each piece's duration is drawn from a hash of
 * its key, so both designs see the same duration for the same piece, run after run.
 */

/** The standard normal's 99th percentile. */
const Z99 = 2.326;

/** A log-normal duration distribution; `null` means instant runs. */
export interface Latency {
	medianMs: number;
	p99Ms: number;
	mu: number;
	sigma: number;
}

/** Parses `MEDIAN:P99` (ms); "" is instant runs. Throws on anything else. */
export function parseLatency(text: string): Latency | null {
	if (!text) return null;
	const match = /^(\d+(?:\.\d+)?):(\d+(?:\.\d+)?)$/.exec(text.trim());
	const medianMs = Number(match?.[1]);
	const p99Ms = Number(match?.[2]);
	if (!match || !(medianMs > 0) || !(p99Ms >= medianMs)) throw new Error(`latency must be MEDIAN:P99 in ms with 0 < MEDIAN ≤ P99, not ${JSON.stringify(text)}`);
	return { medianMs, p99Ms, mu: Math.log(medianMs), sigma: Math.log(p99Ms / medianMs) / Z99 };
}

/** The duration (ms, whole) of the run of the piece `key`: 0 for instant runs. */
export function drawMs(latency: Latency | null, key: string): number {
	if (!latency) return 0;
	// Two independent uniforms in (0, 1) from the key, then Box–Muller.
	const u1 = (hash32(key, 0x811c9dc5) + 0.5) / 2 ** 32;
	const u2 = (hash32(key, 0x9e3779b9) + 0.5) / 2 ** 32;
	const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
	return Math.round(Math.exp(latency.mu + latency.sigma * z));
}

/** FNV-1a over the key from `seed`, with a final avalanche so nearby keys scatter. */
function hash32(key: string, seed: number): number {
	let h = seed >>> 0;
	for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
	h ^= h >>> 16;
	h = Math.imul(h, 0x85ebca6b);
	h ^= h >>> 13;
	h = Math.imul(h, 0xc2b2ae35);
	h ^= h >>> 16;
	return h >>> 0;
}

/** The q-quantile (0–1) of values sorted ascending (nearest rank); null if there are none. */
export function quantile(sorted: readonly number[], q: number): number | null {
	if (!sorted.length) return null;
	return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}
