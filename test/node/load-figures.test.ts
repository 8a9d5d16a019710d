import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module of the load benchmark, without types.
import { figures, missedGoals, newTally, percentile, record, registryCheck, unanswered } from "../../bench/load-figures.mjs";
// @ts-expect-error: a plain ES module of the bench rigs, without types.
import { registrationLimit } from "../../bench/rig.mjs";

/*
 * `npm run load`'s judgement (bench/load-figures.mjs) and its reading of the registration
 * limit (bench/rig.mjs): the benchmark itself is not part of the suite, but what decides
 * whether it passes is, since a check that cannot fail would let a lost piece through.
 */

describe("the registration limit read from wrangler.toml", () => {
	it("is the REGISTRATION_LIMITER table's simple limit and period", () => {
		const toml = `[vars]\nX = "1"\n\n[[ratelimits]]\nname = "OTHER"\nnamespace_id = "1"\nsimple = { limit = 5, period = 10 }\n\n[[ratelimits]]\nname = "REGISTRATION_LIMITER"\nnamespace_id = "1001"\nsimple = { period = 60, limit = 30 }\n\n[observability]\nenabled = true\n`;
		expect(registrationLimit(toml)).toEqual({ limit: 30, period: 60 });
	});

	it("is null without that table", () => {
		expect(registrationLimit(`[[ratelimits]]\nname = "OTHER"\nsimple = { limit = 5, period = 10 }\n`)).toBeNull();
		expect(registrationLimit(`[vars]\nREGISTRATION_LIMITER = "x"\n`)).toBeNull();
	});
});

describe("a phase's figures", () => {
	it("counts answers by class, 429s apart, and the unanswered", () => {
		const tally = newTally();
		for (const [status, ms] of [[200, 10], [201, 20], [404, 30], [429, 40], [500, 50], [503, 60]] as const) record(tally, status, ms);
		unanswered(tally, "connection refused");
		unanswered(tally, "later error");
		tally.sent = 8;
		const f = figures(tally, 2);
		expect(f).toMatchObject({ sent: 8, answered: 6, unanswered: 2, s2xx: 2, s4xx: 2, s429: 1, s5xx: 2, firstError: "connection refused", maxMs: 60, perSecond: 3 });
	});

	it("takes nearest-rank percentiles", () => {
		const sorted = Array.from({ length: 200 }, (_, i) => i + 1);
		expect(percentile(sorted, 50)).toBe(100);
		expect(percentile(sorted, 99)).toBe(198);
		expect(percentile([7], 99)).toBe(7);
		expect(percentile([], 50)).toBeNull();
	});
});

describe("the registry check", () => {
	it("finds lost, duplicated and unexpected pieces, and excuses the uncertain", () => {
		const check = registryCheck(new Set(["a", "b", "c", "d"]), new Set(["u"]), ["a", "b", "b", "d", "u", "x"]);
		expect(check).toMatchObject({ expected: 4, listed: 6, distinct: 5, lost: 1, duplicated: 1, unexpected: 1, samples: { lost: ["c"], duplicated: ["b"], unexpected: ["x"] } });
	});

	it("passes a registry listing each expected piece once", () => {
		const check = registryCheck(new Set(["a", "b"]), new Set(), ["b", "a"]);
		expect(missedGoals([], check, [])).toEqual([]);
	});
});

describe("the goals", () => {
	const clean = registryCheck(new Set(["a"]), new Set(), ["a"]);
	const row = (load: string, counts: Partial<Record<string, number>>) => {
		const tally = newTally();
		Object.assign(tally, counts);
		return { phase: "all at once", load, figures: figures(tally, 1) };
	};

	it("are missed by a 5xx, an unanswered request, a 4xx (a 429 named), a lost piece or a process left", () => {
		const missed = missedGoals([row("status reads", { s5xx: 1 }), row("admin pages", { unanswered: 2, sent: 9 }), row("registrations", { s4xx: 3, s429: 3 })], registryCheck(new Set(["a"]), new Set(), []), ["42 (workerd)"]);
		expect(missed).toHaveLength(5);
		expect(missed.join("\n")).toMatch(/status reads: 1 answers were 5xx/);
		expect(missed.join("\n")).toMatch(/admin pages: 2 of 9 requests got no answer/);
		expect(missed.join("\n")).toMatch(/registrations: 3 valid requests .* refused with a 4xx \(3 of them 429\)/);
		expect(missed.join("\n")).toMatch(/1 registered pieces are missing \(a\)/);
		expect(missed.join("\n")).toMatch(/42 \(workerd\)/);
	});

	it("are met by answers all 2xx, with nothing lost", () => {
		expect(missedGoals([row("status reads", { s2xx: 40, answered: 40, sent: 40 })], clean, [])).toEqual([]);
	});
});
