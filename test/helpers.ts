import { env, exports } from "cloudflare:workers";
import type { PieceEntry } from "../src/registry/entry";
import { registered } from "../src/policy/schedule";
import { pieceKey } from "../src/registry/keys";
import { summarise } from "../src/registry/store";
import { newSpace, newPieceId } from "./ids";

export { T0, newLegacyPieceId, newPieceId, newSpace } from "./ids";

let clients = 0;

/**
 * A client address of its own (CF-Connecting-IP, as Cloudflare sets it), in IPv6's documentation
 * prefix: a /64 of its own, since the limiter counts an IPv6 client by its /64.
 */
export function newClientAddress(): string {
	return `2001:db8:${Math.floor(Math.random() * 0xffff).toString(16)}:${(++clients).toString(16)}::1`;
}

/**
 * A request to the Worker's fetch handler, through its exports (integration tests). Each comes
 * from a client address of its own unless the test names one, so the registration limiter (a
 * counter per address, shared by every test file) limits only the tests that mean it to.
 */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
	const headers = new Headers(init.headers);
	if (!headers.has("cf-connecting-ip")) headers.set("cf-connecting-ip", newClientAddress());
	return exports.default.fetch(new Request(`https://scheduler.test${path}`, { ...init, headers }));
}

/** An admin request with the test token. */
export function admin(path: string, init: RequestInit = {}): Promise<Response> {
	const headers = new Headers(init.headers);
	headers.set("authorization", `Bearer ${env.ADMIN_TOKEN}`);
	return call(path, { ...init, headers });
}

/** Registers a piece as the seed's curl does. */
export function registerPiece(fields: { space: string; pieceId: string; integration: string }): Promise<Response> {
	return call("/api/integrations/bg", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(fields) });
}

/** The path of one piece's admin routes. */
export function piecePath(space: string, pieceId: string): string {
	return `/api/integrations/bg/${space}/${pieceId}`;
}

/** Writes an entry straight into the registry (seeding pieces without the API). */
export async function seedPiece(overrides: Partial<PieceEntry> & { integration?: string } = {}): Promise<PieceEntry> {
	const base = registered(null, { space: overrides.space ?? newSpace(), pieceId: overrides.pieceId ?? newPieceId(), integration: overrides.integration ?? "counter" }, 1_000);
	const entry = { ...base, ...overrides };
	// Straight to KV, like data written long ago: putEntry would make the next write of this
	// key in the test wait out KV's one-write-per-second interval.
	await env.REGISTRY.put(pieceKey(entry), JSON.stringify(entry), { metadata: summarise(entry) });
	return entry;
}

/** Polls until `check` returns a value that is not undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
	const deadline = Date.now() + timeoutMs;
	for (;;) {
		const value = await check();
		if (value !== undefined) return value;
		if (Date.now() > deadline) throw new Error("condition not met in time");
		await new Promise((resolve) => setTimeout(resolve, 50));
	}
}

/**
 * Fires the Worker's cron as Cloudflare does, through its exports. `scheduled()` on a
 * loopback binding exists at run time but is missing from the generated types.
 */
export async function fireTick(scheduledTime: number): Promise<void> {
	const main = exports.default as unknown as { scheduled(options: { scheduledTime: Date; cron: string }): Promise<unknown> };
	await main.scheduled({ scheduledTime: new Date(scheduledTime), cron: "* * * * *" });
}

/** Asks the reference runtime how often the `counter` piece ran. */
export async function runCount(piece: { space: string; pieceId: string }): Promise<number> {
	const response = await env.RUNTIME!.fetch(`https://runtime.internal/counts/${piece.space}/${piece.pieceId}`);
	return (await response.json<{ count: number }>()).count;
}
