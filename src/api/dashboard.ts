import type { IRequest } from "itty-router";
import { basePath } from "./base-path";
import { notFound } from "./errors";

/**
 * A request no route matched. Workers Static Assets serves the dashboard (public/) at the
 * origin's root, before the Worker and free of charge; under a BASE_PATH those paths belong to
 * the app, so the Worker serves the files itself from its assets binding, the prefix taken off
 * (a billed request per file: a handful per visit). The dashboard's URLs are relative, so it
 * works under any prefix. Redirects the assets answer (`/index.html` → `/`) keep the prefix.
 */
export async function dashboardOrMissing(request: IRequest, env: Env): Promise<Response> {
	const base = basePath(env);
	const url = new URL(request.url);
	const prefix = "prefix" in base ? base.prefix : "";
	const path = url.pathname.slice(prefix.length);
	// Only under a prefix, and only for the router of that prefix (its requests start with it).
	const served = prefix !== "" && url.pathname.startsWith(`${prefix}/`) && (request.method === "GET" || request.method === "HEAD") && !path.startsWith("/api/");
	if (!served) return notFound();
	const response = await env.ASSETS.fetch(new Request(new URL(path + url.search, url), { method: request.method, headers: request.headers }));
	const location = response.headers.get("location");
	if (!location?.startsWith("/")) return response;
	const moved = new Response(response.body, response);
	moved.headers.set("location", `${prefix}${location}`);
	return moved;
}
