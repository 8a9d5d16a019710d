/**
 * Where the Worker answers (docs/deploying-on-the-app-origin.md). The shell registers pieces
 * with a relative URL, so `POST /api/integrations/bg` must be served on the app's own origin
 * at that exact path; everything else the Worker serves (admin API, health, stats, OpenAPI,
 * reports, the dashboard) lives under BASE_PATH, so that on a shared origin none of it
 * collides with the app's own `/api/*`. With BASE_PATH empty (a host of the Worker's own)
 * every route is at its plain path.
 */

/** The registration route's path, fixed by the shell's `cf-updater`. */
export const REGISTRATION_PATH = "/api/integrations/bg";

/** One or more path segments of URL-safe characters, each after a `/`. */
const BASE_PATH_SYNTAX = /^(?:\/[A-Za-z0-9._~-]+)+$/;

/** BASE_PATH, read: the prefix ("" for none), or why it cannot be one. */
export type BasePath = { prefix: string } | { problem: string };

/**
 * BASE_PATH as a prefix: `""`, or `/segment[/segment…]` without a trailing slash (one is
 * forgiven, and a missing leading one added).
 */
export function basePath(env: Pick<Env, "BASE_PATH">): BasePath {
	const raw = (env.BASE_PATH ?? "").trim();
	if (raw === "" || raw === "/") return { prefix: "" };
	const prefix = `/${raw.replace(/^\/+|\/+$/g, "")}`;
	if (!BASE_PATH_SYNTAX.test(prefix) || prefix.split("/").some((segment) => segment === "." || segment === "..")) {
		return { problem: `BASE_PATH "${raw.slice(0, 80)}" is not a path prefix such as /bg-scheduler (letters, digits, . _ ~ - between slashes)` };
	}
	return { prefix };
}

/** What a request's path is, given the prefix. */
export type Placement =
	/** Served by the routes under `base`: the prefix, or "" for registration at its exact path. */
	| { kind: "route"; base: string }
	/** The prefix itself, without its slash: the dashboard is at `location` (its relative URLs need the slash). */
	| { kind: "redirect"; location: string }
	/** Outside everything this Worker serves. */
	| { kind: "outside" };

/**
 * Where a request belongs. Under a prefix only the registration route (and its CORS
 * preflight) is answered outside it: the app owns every other path of its origin.
 */
export function place(pathname: string, method: string, prefix: string): Placement {
	if (!prefix || isRegistration(pathname, method)) return { kind: "route", base: "" };
	if (pathname === prefix) return { kind: "redirect", location: `${prefix}/` };
	if (pathname.startsWith(`${prefix}/`)) return { kind: "route", base: prefix };
	return { kind: "outside" };
}

/** Whether a request is a registration (or its CORS preflight), answered at its exact path in every layout. */
export function isRegistration(pathname: string, method: string): boolean {
	return pathname === REGISTRATION_PATH && (method === "POST" || method === "OPTIONS");
}
