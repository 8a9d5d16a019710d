import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { api } from "../../src/api";
import { health } from "../../src/api/health";
import { NO_CLIENT_ADDRESS, REGISTRATION_LIMIT_PERIOD_SECONDS, clientKey, limitRegistrations } from "../../src/api/registration-limit";
import { getEntry, putLastTick, type TickSummary } from "../../src/registry/store";
import { call, newClientAddress, newPieceId, newSpace, seedPiece } from "../helpers";

/** wrangler.toml's REGISTRATION_LIMITER: `simple = { limit = 60, period = 60 }`. */
const LIMIT = 60;

const REGISTER = "/api/integrations/bg";

/** A registration from one client address. */
function registerFrom(client: string, body: unknown): Promise<Response> {
	return call(REGISTER, { method: "POST", headers: { "cf-connecting-ip": client }, body: typeof body === "string" ? body : JSON.stringify(body) });
}

/**
 * Waits for a fresh limiter window if the current one ends within 20 s: the local limiter
 * counts in windows aligned to the wall clock's minute, and a test must not straddle two.
 */
async function freshWindow(): Promise<void> {
	const left = 60_000 - (Date.now() % 60_000);
	if (left < 20_000) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

describe("registration floods (REGISTRATION_LIMITER)", () => {
	it("refuses one client far past the limit with 429 and Retry-After, before its body is read, storing nothing", { timeout: 90_000 }, async () => {
		await freshWindow();
		const client = newClientAddress();
		const known = await seedPiece({ integration: "counter" });
		// The limit's worth of registrations from one client: every one answered.
		const accepted = await Promise.all(Array.from({ length: LIMIT }, () => registerFrom(client, { space: known.space, pieceId: known.pieceId, integration: "counter" })));
		expect(accepted.map((response) => response.status)).toEqual(Array(LIMIT).fill(200));
		// Far past it: new pieces and a body that is not even JSON, all refused alike.
		const fresh = Array.from({ length: 40 }, () => ({ space: newSpace(), pieceId: newPieceId(), integration: "counter" }));
		const refused = await Promise.all([...fresh.map((body) => registerFrom(client, body)), registerFrom(client, "{not json")]);
		for (const response of refused) {
			expect(response.status).toBe(429);
			expect(response.headers.get("retry-after")).toBe(String(REGISTRATION_LIMIT_PERIOD_SECONDS));
			expect(await response.json()).toEqual({ success: false, error: `too many registrations from this client (REGISTRATION_LIMITER in wrangler.toml); try again in ${REGISTRATION_LIMIT_PERIOD_SECONDS} s` });
		}
		// Nothing was stored for any refused piece.
		for (const piece of fresh) expect(await getEntry(env, piece)).toBeNull();
		// Another client is not held up by this one.
		const other = { space: newSpace(), pieceId: newPieceId(), integration: "counter" };
		expect((await registerFrom(newClientAddress(), other)).status).toBe(200);
		expect(await getEntry(env, other)).not.toBeNull();
	});

	it("lets many clients through, each under the limit, though together far past it", { timeout: 90_000 }, async () => {
		await freshWindow();
		const pieces = await Promise.all(Array.from({ length: 30 }, () => seedPiece({ integration: "counter" })));
		// 30 clients × 4 registrations = 120 in a window, twice one client's limit.
		const answers = await Promise.all(
			pieces.flatMap((piece) => {
				const client = newClientAddress();
				return Array.from({ length: 4 }, () => registerFrom(client, { space: piece.space, pieceId: piece.pieceId, integration: "counter" }));
			}),
		);
		expect(answers.filter((response) => response.status !== 200).map((response) => response.status)).toEqual([]);
	});

	it("counts by CF-Connecting-IP, and puts every request without one on a single counter", async () => {
		// A RECORDING WRAPPER around the real binding: it passes each call on and notes its key.
		const keys: string[] = [];
		const recording = { limit: (options: RateLimitOptions) => (keys.push(options.key), env.REGISTRATION_LIMITER.limit(options)) } as RateLimit;
		const request = (headers: Record<string, string>) => Object.assign(new Request(`https://scheduler.test${REGISTER}`, { method: "POST", headers }), { params: {}, query: {}, route: REGISTER });
		await limitRegistrations(request({ "cf-connecting-ip": "203.0.113.9", "x-forwarded-for": "198.51.100.1" }), { REGISTRATION_LIMITER: recording });
		await limitRegistrations(request({}), { REGISTRATION_LIMITER: recording });
		await limitRegistrations(request({ "cf-connecting-ip": "2001:db8:7:8:aaaa::1" }), { REGISTRATION_LIMITER: recording });
		expect(keys).toEqual(["203.0.113.9", NO_CLIENT_ADDRESS, "2001:db8:7:8::/64"]);
	});

	it("counts an IPv6 client by its /64, so stepping through its addresses does not pass the limit", { timeout: 90_000 }, async () => {
		expect(clientKey("2001:DB8:0007:0008:1:2:3:4")).toBe("2001:db8:7:8::/64");
		expect(clientKey("2001:db8:7:8::")).toBe("2001:db8:7:8::/64");
		expect(clientKey("::1")).toBe("0:0:0:0::/64");
		for (const whole of ["198.51.100.7", "::ffff:198.51.100.7", "2001:db8::1::2", "not an address"]) expect(clientKey(whole)).toBe(whole);
		await freshWindow();
		// One /64, a new address each time: one counter.
		const block = `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:ffff`;
		const answers: number[] = [];
		for (let i = 1; i <= LIMIT + 5; i++) answers.push((await registerFrom(`${block}::${i.toString(16)}`, "{not json")).status);
		// Within the limit the body is read (400: not JSON); past it, refused before that.
		expect(answers.slice(0, LIMIT)).toEqual(Array(LIMIT).fill(400));
		expect(answers.slice(LIMIT)).toEqual(Array(5).fill(429));
	});
});

/** A tick summary that counted `listed` pieces just now. */
function tickOf(listed: number, lanes = 1): TickSummary {
	return { scheduledTime: Date.now(), listed, due: 0, dispatched: 0, skipped: listed, failed: 0, listCalls: 1, sendCalls: 0, lanes, handedOver: 0, ms: 1 };
}

describe("the registry's global cap (MAX_PIECES)", () => {
	/** The Worker with other settings, through its router (the test's own env stays as it is). */
	function withSettings(settings: Partial<Env>, body: unknown): Promise<Response> {
		const request = new Request(`https://scheduler.test${REGISTER}`, { method: "POST", headers: { "cf-connecting-ip": newClientAddress() }, body: JSON.stringify(body) });
		return api.fetch(request, { ...env, ...settings }, createExecutionContext());
	}

	it("refuses a new piece once the last tick counted MAX_PIECES (507), and still takes a known one", async () => {
		// The count is the last tick's, however many pieces this test's KV holds: set it.
		await putLastTick(env, tickOf(500));
		const known = await seedPiece({ integration: "counter", updatedAt: 1_000 });
		const full = { MAX_PIECES: "500" };
		const fresh = { space: newSpace(), pieceId: newPieceId(), integration: "counter" };
		const refused = await withSettings(full, fresh);
		expect(refused.status).toBe(507);
		expect(await refused.json()).toEqual({ success: false, error: "the registry is full: it holds 500 pieces, the most it takes (MAX_PIECES = 500); known pieces still re-register" });
		expect(await getEntry(env, fresh)).toBeNull();
		const again = await withSettings(full, { space: known.space, pieceId: known.pieceId, integration: "counter" });
		expect(again.status).toBe(200);
		// Room for one more: taken.
		expect((await withSettings({ MAX_PIECES: "501" }, fresh)).status).toBe(200);
		expect(await getEntry(env, fresh)).not.toBeNull();
	});

	it("counts every lane: lane 0's count times the lanes", async () => {
		await putLastTick(env, tickOf(300, 2));
		const fresh = { space: newSpace(), pieceId: newPieceId(), integration: "counter" };
		expect((await withSettings({ MAX_PIECES: "600" }, fresh)).status).toBe(507);
		expect((await withSettings({ MAX_PIECES: "601" }, fresh)).status).toBe(200);
	});

	it("health says when the registry nears the cap (90 %) and when it is full", async () => {
		const at = (settings: Partial<Env>) => health(new Request("https://bg.example.com/api/health"), { ...env, ...settings });
		await putLastTick(env, tickOf(899));
		const below = await at({ MAX_PIECES: "1000" });
		expect(below.registry).toEqual({ pieces: 899, maxPieces: 1000, state: "ok" });
		expect(below.problems.join(" ")).not.toContain("registry");
		await putLastTick(env, tickOf(900));
		const near = await at({ MAX_PIECES: "1000" });
		expect(near.status).toBe("degraded");
		expect(near.registry).toEqual({ pieces: 900, maxPieces: 1000, state: "near" });
		expect(near.problems).toContain("the registry nears its cap: 900 pieces of MAX_PIECES 1000 (90 %); new pieces are refused from 1000 on");
		await putLastTick(env, tickOf(1000));
		const full = await at({ MAX_PIECES: "1000" });
		expect(full.registry).toMatchObject({ state: "full" });
		expect(full.problems).toContain("the registry is full: 1000 pieces of MAX_PIECES 1000; new pieces are refused (507) until pieces are deleted or MAX_PIECES is raised");
		// The default cap, as shipped.
		expect((await at({ MAX_PIECES: undefined })).registry).toMatchObject({ maxPieces: 100_000, state: "ok" });
		await putLastTick(env, tickOf(0));
	});
});
