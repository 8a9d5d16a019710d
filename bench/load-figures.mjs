// `npm run load` (bench/load.mjs): its figures, pure (no I/O): what one kind of request did in
// a phase, the registry check afterwards, and which goals were missed. A harness, not deployed.

/** A tally of one kind of request in one phase; `record` and `unanswered` fill it. */
export function newTally() {
	return { sent: 0, answered: 0, unanswered: 0, s2xx: 0, s4xx: 0, s429: 0, s5xx: 0, other: 0, latenciesMs: [], firstError: null };
}

/** An answer with HTTP `status` after `ms`. A 429 counts among the 4xx and apart. */
export function record(tally, status, ms) {
	tally.answered++;
	tally.latenciesMs.push(ms);
	if (status >= 200 && status < 300) tally.s2xx++;
	else if (status >= 400 && status < 500) tally.s4xx++;
	else if (status >= 500) tally.s5xx++;
	else tally.other++;
	if (status === 429) tally.s429++;
}

/** A request that got no answer (a network error, or none within the timeout). */
export function unanswered(tally, message) {
	tally.unanswered++;
	tally.firstError ??= message;
}

/** The `p`-th percentile (0–100) of `sorted` (ascending), nearest rank; null when empty. */
export function percentile(sorted, p) {
	if (!sorted.length) return null;
	return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** A tally's figures over a phase of `seconds`: counts, latency p50 / p99 / max (ms, rounded), answers a second. */
export function figures(tally, seconds) {
	const sorted = [...tally.latenciesMs].sort((a, b) => a - b);
	const round = (ms) => (ms === null ? null : Math.round(ms));
	const { latenciesMs: _, ...counts } = tally;
	return { ...counts, p50Ms: round(percentile(sorted, 50)), p99Ms: round(percentile(sorted, 99)), maxMs: round(sorted.at(-1) ?? null), perSecond: Math.round((tally.answered / seconds) * 10) / 10 };
}

/**
 * The registry as the admin list gave it (`listed`: one key per listed entry, in list order)
 * against what must be there (`expected`: keys answered 200, or seeded) and what may be
 * (`uncertain`: keys of registrations that got no answer or a 5xx, which may or may not have
 * landed). Lost: expected but not listed; duplicated: listed more than once; unexpected:
 * listed, neither expected nor uncertain. A few keys of each are kept as samples.
 */
export function registryCheck(expected, uncertain, listed) {
	const seen = new Map();
	for (const key of listed) seen.set(key, (seen.get(key) ?? 0) + 1);
	const lost = [...expected].filter((key) => !seen.has(key));
	const duplicated = [...seen].filter(([, n]) => n > 1).map(([key]) => key);
	const unexpected = [...seen.keys()].filter((key) => !expected.has(key) && !uncertain.has(key));
	const sample = (keys) => keys.slice(0, 5);
	return { expected: expected.size, listed: listed.length, distinct: seen.size, lost: lost.length, duplicated: duplicated.length, unexpected: unexpected.length, samples: { lost: sample(lost), duplicated: sample(duplicated), unexpected: sample(unexpected) } };
}

/**
 * The goals a run missed, one sentence each (empty: all met). `rows` are `{phase, load,
 * figures}`: no row may have a 5xx or an unanswered request, nor a 4xx, since every request
 * the benchmark sends is valid and within the limits (registrations at a rate the limit
 * allows, reads of registered pieces, pages with the admin token). The registry check must
 * find nothing lost, duplicated or unexpected, and the system must leave no process behind.
 */
export function missedGoals(rows, check, leftovers) {
	const missed = [];
	for (const { phase, load, figures: f } of rows) {
		const where = `${phase}, ${load}`;
		if (f.s5xx) missed.push(`${where}: ${f.s5xx} answers were 5xx`);
		if (f.unanswered) missed.push(`${where}: ${f.unanswered} of ${f.sent} requests got no answer (first: ${f.firstError})`);
		if (f.s4xx) missed.push(`${where}: ${f.s4xx} valid requests within the limits were refused with a 4xx (${f.s429} of them 429)`);
		if (f.other) missed.push(`${where}: ${f.other} answers were neither 2xx, 4xx nor 5xx`);
	}
	if (check.lost) missed.push(`registry: ${check.lost} registered pieces are missing (${check.samples.lost.join(", ")})`);
	if (check.duplicated) missed.push(`registry: ${check.duplicated} pieces are listed more than once (${check.samples.duplicated.join(", ")})`);
	if (check.unexpected) missed.push(`registry: ${check.unexpected} pieces nobody registered are listed (${check.samples.unexpected.join(", ")})`);
	if (leftovers.length) missed.push(`${leftovers.length} processes of the system were left running: ${leftovers.join("; ")}`);
	return missed;
}
