import { cors, type IRequest } from "itty-router";
import { registryCapacity } from "../policy/capacity";
import { countPieces, getLastTick } from "../registry/store";
import { adminTokens, matchAdminToken } from "./admin-tokens";
import { bearerToken } from "./auth";
import { StatusError } from "./errors";

/** The bindings that steer who may call the API. */
export type AccessEnv = Pick<Env, "ALLOWED_ORIGINS" | "REGISTRATION_TOKEN" | "ADMIN_TOKEN" | "MAX_PIECES_PER_SPACE" | "MAX_PIECES" | "REGISTRY">;

/** Default cap on the pieces of one space (one KV list page counts them). */
export const DEFAULT_MAX_PIECES_PER_SPACE = 1000;

/** The origins ALLOWED_ORIGINS names (comma-separated), or "*" for any (the default). */
export function allowedOrigins(env: Pick<Env, "ALLOWED_ORIGINS">): "*" | string[] {
	const list = (env.ALLOWED_ORIGINS ?? "*").split(",").map((origin) => origin.trim()).filter(Boolean);
	if (list.length === 0 || list.includes("*")) return "*";
	// As a browser sends it: scheme, host and port, lower-case, no path or trailing slash.
	return list.map((origin) => URL.parse(origin)?.origin ?? origin);
}

const corsByConfig = new Map<string, ReturnType<typeof cors>>();

/**
 * itty-router's CORS pair for the configured origins, made once per configuration. The
 * registering component posts from the page's origin, another than this Worker's.
 */
export function corsFor(env: Pick<Env, "ALLOWED_ORIGINS">): ReturnType<typeof cors> {
	const origins = allowedOrigins(env);
	const key = origins === "*" ? "*" : origins.join(",");
	let pair = corsByConfig.get(key);
	if (!pair) {
		pair = cors({
			origin: origins === "*" ? "*" : (origin: string) => (origins.includes(origin) ? origin : undefined),
			allowMethods: ["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
			allowHeaders: ["Content-Type", "Authorization"],
			maxAge: 86_400,
		});
		corsByConfig.set(key, pair);
	}
	return pair;
}

/**
 * Adds the CORS headers to a response. With a list of origins the answer depends on the
 * request's Origin, so it says `Vary: Origin` and no cache serves one origin's answer to another.
 */
export function withCors(response: Response, request: IRequest, env: Pick<Env, "ALLOWED_ORIGINS">): Response {
	const answer = corsFor(env).corsify(response, request);
	if (allowedOrigins(env) !== "*") answer.headers.append("vary", "Origin");
	return answer;
}

/**
 * Who may register. A request from a browser page carries its Origin: one not in
 * ALLOWED_ORIGINS is refused (403), since a CORS-simple POST would otherwise go through even
 * though the page could not read the answer. With REGISTRATION_TOKEN set, registration also
 * needs `Authorization: Bearer` with it (or with any of the admin tokens).
 */
export async function requireRegistrant(request: IRequest, env: AccessEnv): Promise<void> {
	const origins = allowedOrigins(env);
	const origin = request.headers.get("origin");
	if (origin && origins !== "*" && !origins.includes(origin)) throw new StatusError(403, `origin ${origin} may not register pieces (ALLOWED_ORIGINS)`);
	if (!env.REGISTRATION_TOKEN) return;
	const token = bearerToken(request);
	// One constant-time comparison against every accepted token (src/api/admin-tokens.ts).
	const allowed = token && (await matchAdminToken(token, [env.REGISTRATION_TOKEN, ...adminTokens(env)])) !== null;
	if (!allowed) throw new StatusError(401, "registration needs a token here (Authorization: Bearer <REGISTRATION_TOKEN>)");
}

/** The per-space cap from MAX_PIECES_PER_SPACE, or the default if unset or invalid. */
export function maxPiecesPerSpace(env: Pick<Env, "MAX_PIECES_PER_SPACE">): number {
	const value = Number(env.MAX_PIECES_PER_SPACE);
	return Number.isInteger(value) && value > 0 ? value : DEFAULT_MAX_PIECES_PER_SPACE;
}

/**
 * Refuses a new piece in a space that already holds the maximum (409): one space must not
 * fill the registry. Counting lists that space's keys only (one KV list per 1,000).
 */
export async function requireRoomInSpace(env: AccessEnv, space: string): Promise<void> {
	const max = maxPiecesPerSpace(env);
	if ((await countPieces(env, space, max)) >= max) {
		throw new StatusError(409, `space ${space} already has ${max} pieces, the most one space may register (MAX_PIECES_PER_SPACE)`);
	}
}

/**
 * Refuses a new piece once the whole registry holds MAX_PIECES (507: the service has no room,
 * which no client can fix; health has warned from 90 %). One KV read: the count is the last
 * tick's (src/policy/capacity.ts says how stale, and why that is enough). A known piece never
 * comes here: re-registering it adds nothing.
 */
export async function requireRoomInRegistry(env: AccessEnv): Promise<void> {
	const room = registryCapacity(await getLastTick(env), env.MAX_PIECES);
	if (room.state === "full") {
		throw new StatusError(507, `the registry is full: it holds ${room.pieces} pieces, the most it takes (MAX_PIECES = ${room.max}); known pieces still re-register`);
	}
}
