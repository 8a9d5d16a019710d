import type { IRequest } from "itty-router";
import { retryLater } from "./errors";

/** The binding the registration route's flood limit needs (wrangler.toml `[[ratelimits]]`). */
export type RegistrationLimitEnv = Pick<Env, "REGISTRATION_LIMITER">;

/**
 * The limiter's period in seconds, as wrangler.toml sets it (`simple.period`, 10 or 60): a
 * refused client's counter is free again within it, so it is the answer's Retry-After.
 */
export const REGISTRATION_LIMIT_PERIOD_SECONDS = 60;

/** The one key of the requests that carry no client address (below). */
export const NO_CLIENT_ADDRESS = "no-client-address";

/**
 * Refuses a client past its registrations for the period (429 with Retry-After), first of
 * all: before the body is read and before any KV operation, so a flood costs a Worker request
 * and a limiter call each, and stores nothing. The client is its `CF-Connecting-IP`, which
 * Cloudflare sets on every request from the internet (a client can neither forge nor drop
 * it), unlike `X-Forwarded-For`, which anyone may send. A request without it did not come
 * through Cloudflare's edge (another Worker through a service binding, a test): all such
 * requests share one counter, so nothing is ever unlimited. An IPv6 client counts by its /64
 * (`clientKey`).
 */
export async function limitRegistrations(request: IRequest, env: RegistrationLimitEnv): Promise<void> {
	const client = clientKey(request.headers.get("cf-connecting-ip"));
	const { success } = await env.REGISTRATION_LIMITER.limit({ key: client });
	if (!success) {
		throw retryLater(429, `too many registrations from this client (REGISTRATION_LIMITER in wrangler.toml); try again in ${REGISTRATION_LIMIT_PERIOD_SECONDS} s`, REGISTRATION_LIMIT_PERIOD_SECONDS);
	}
}

/**
 * The limiter's key for a client address: an IPv4 address as it is; an IPv6 address as its
 * /64, the block one subscriber is given, so a client cannot pass the limit by stepping through
 * the 2^64 addresses it holds; no address, NO_CLIENT_ADDRESS. Anything that does not parse as
 * plain IPv6 groups is kept whole.
 */
export function clientKey(address: string | null): string {
	if (!address) return NO_CLIENT_ADDRESS;
	if (!address.includes(":") || address.includes(".")) return address;
	const halves = address.toLowerCase().split("::");
	if (halves.length > 2) return address;
	const head = halves[0] ? halves[0].split(":") : [];
	const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
	const groups = halves.length === 2 ? [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill("0"), ...tail] : head;
	if (groups.length !== 8 || !groups.every((group) => /^[0-9a-f]{1,4}$/.test(group))) return address;
	return `${groups.slice(0, 4).map((group) => parseInt(group, 16).toString(16)).join(":")}::/64`;
}
