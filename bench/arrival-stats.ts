/**
 * BENCHMARK HARNESS ONLY: the figures `npm run bench:arrivals` derives from the runtime's
 * arrival times (bench/arrivals.mjs), with the product's own phase rule (src/policy/schedule.ts),
 * so "due" is what the scheduler intends: the tick plus the piece's stable phase.
 */
import { phaseSeconds } from "../src/policy/schedule";
import { quantile } from "./latency";

export { identityFromPassphrase } from "../src/identity/ed25519";

/** What the arrivals say, for two ticks a period apart. */
export function summarise(arrivals: [string, number[]][], options: { pieces: number; ticks: [number, number]; spreadSeconds: number; periodMs: number; settleSeconds?: number }) {
	const { ticks, periodMs } = options;
	const [first, second] = ticks;
	const windowStart = first;
	const windowSeconds = (2 * periodMs) / 1000;
	const bins = new Array<number>(windowSeconds).fill(0);
	const lateness: number[] = [];
	const jitter: number[] = [];
	let runs = 0;
	for (const [piece, times] of arrivals) {
		const [space = "", pieceId = ""] = piece.split("/");
		const phaseMs = phaseSeconds({ space, pieceId }, options.spreadSeconds) * 1000;
		const sorted = [...times].sort((a, b) => a - b);
		runs += sorted.length;
		for (const time of sorted) {
			const bin = Math.floor((time - windowStart) / 1000);
			if (bin >= 0 && bin < windowSeconds) bins[bin]!++;
		}
		// The first run answers the first tick, the second the second.
		sorted.slice(0, 2).forEach((time, i) => lateness.push(time - ((i === 0 ? first : second) + phaseMs)));
		if (sorted.length >= 2) jitter.push(Math.abs(sorted[1]! - sorted[0]! - periodMs));
	}
	const inWindow = bins.reduce((a, b) => a + b, 0);
	const mean = inWindow / windowSeconds;
	const peak = (width: number) => {
		let best = 0;
		for (let i = 0; i + width <= bins.length; i++) best = Math.max(best, bins.slice(i, i + width).reduce((a, b) => a + b, 0) / width);
		return best;
	};
	const round = (x: number, d = 2) => Number(x.toFixed(d));
	// A diagnostic, labelled as such: the same figures without each tick's first seconds, where
	// the rig's own fan-outs (every instance at once, on the machine's few cores) hold up the
	// delayed deliveries of the same process.
	const settle = options.settleSeconds ?? 10;
	const periodSeconds = periodMs / 1000;
	const settled = bins.filter((_, i) => i % periodSeconds >= settle);
	const settledMean = settled.reduce((a, b) => a + b, 0) / Math.max(1, settled.length);
	const settledJitter: number[] = [];
	for (const [piece, times] of arrivals) {
		const sorted = [...times].sort((a, b) => a - b);
		if (sorted.length >= 2 && sorted[0]! - first >= settle * 1000 && sorted[1]! - second >= settle * 1000) settledJitter.push(Math.abs(sorted[1]! - sorted[0]! - periodMs));
		void piece;
	}
	const widths = { "1s": 1, "5s": 5, "10s": 10 } as const;
	const q = (values: number[], p: number) => quantile([...values].sort((a, b) => a - b), p);
	return {
		runs,
		missing: 2 * options.pieces - runs,
		runtimeMeanRps: round(mean),
		runtimePeakRps: peak(1),
		peakRps: Object.fromEntries(Object.entries(widths).map(([k, w]) => [k, round(peak(w))])),
		peakToMean: Object.fromEntries(Object.entries(widths).map(([k, w]) => [k, mean ? round(peak(w) / mean) : null])),
		lateness: { p50Ms: q(lateness, 0.5), p99Ms: q(lateness, 0.99), maxMs: q(lateness, 1) },
		periodJitterMs: { p50: q(jitter, 0.5), p99: q(jitter, 0.99), max: q(jitter, 1) },
		afterSettling: {
			settleSeconds: settle,
			peakToMean1s: settledMean ? round(Math.max(...settled) / settledMean) : null,
			periodJitterMs: { p50: q(settledJitter, 0.5), p99: q(settledJitter, 0.99), pieces: settledJitter.length },
		},
		arrivalsPerSecond: bins,
	};
}
