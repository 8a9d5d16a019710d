import { AutoRouter, type IRequest } from "itty-router";
import { corsFor, requireRegistrant, withCors } from "./api/access";
import { requireAdmin } from "./api/auth";
import { basePath, isRegistration, place, REGISTRATION_PATH } from "./api/base-path";
import { dashboardOrMissing } from "./api/dashboard";
import { StatusError, errorResponse, notFound } from "./api/errors";
import { health } from "./api/health";
import { importRows } from "./api/import";
import { deletePiece, getPiece, listPiecesRoute, patchPiece, runPieceNow } from "./api/pieces";
import { register } from "./api/registration";
import { limitRegistrations } from "./api/registration-limit";
import { openApiFor } from "./api/openapi";
import { stats } from "./api/stats";
import { receiveReports } from "./reports";

type Args = [Env, ExecutionContext];

// Admin routes: refused, or let through with who made the request (src/api/auth.ts `adminOf`).
const admin = (request: IRequest, env: Env) => requireAdmin(request, env);
const registrant = (request: IRequest, env: Env) => requireRegistrant(request, env);
const PIECE = `${REGISTRATION_PATH}/:space/:pieceId`;

/**
 * The HTTP API under one base path: every route is `${base}/api/…` (src/api/base-path.ts).
 * Requests keep their URL (a runtime's report is signed over its path). Handlers return data
 * (sent as JSON) or throw a StatusError.
 */
function buildRouter(base: string) {
	return AutoRouter<IRequest, Args>({
		base,
	// CORS for the origins ALLOWED_ORIGINS names (default any): preflights answered here.
	before: [(request: IRequest, env: Env) => corsFor(env).preflight(request)],
	finally: [withCors],
	catch: errorResponse,
	// No route: under a BASE_PATH the dashboard's files (the assets layer serves them at / only).
	missing: dashboardOrMissing,
})
	.get("/api/health", health)
	.get("/api/stats", admin, stats)
	.get("/api/openapi.json", (_request: IRequest, env: Env) => openApiFor(env))
	// The flood limit first: a refused request costs no body read and no KV operation.
	.post(REGISTRATION_PATH, limitRegistrations, registrant, register)
	.get(REGISTRATION_PATH, admin, listPiecesRoute)
	.get(PIECE, getPiece)
	.patch(PIECE, admin, patchPiece)
	.delete(PIECE, admin, deletePiece)
	.post(`${PIECE}/run`, admin, runPieceNow)
	.post("/api/admin/import", admin, importRows)
	// Protocol 2: runtimes report outcomes here, signed with their own keys (src/reports.ts).
	.post("/api/runtime/reports", (request: IRequest, env: Env) => receiveReports(request, env));
}

const routers = new Map<string, ReturnType<typeof buildRouter>>();

/** The router for a base path, made once per isolate and base. */
export function routerFor(base: string): ReturnType<typeof buildRouter> {
	let router = routers.get(base);
	if (!router) routers.set(base, (router = buildRouter(base)));
	return router;
}

/** The routes at their plain paths: a Worker on a host of its own. */
export const api = routerFor("");

/**
 * The fetch handler: places the request within BASE_PATH (src/api/base-path.ts) and routes it.
 * Outside the prefix only the registration route is answered.
 */
export async function handleFetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
	const url = new URL(request.url);
	const base = basePath(env);
	if ("problem" in base) {
		// Registration still works; everything else says what to fix.
		return isRegistration(url.pathname, request.method) ? api.fetch(request, env, ctx) : errorResponse(new StatusError(503, base.problem));
	}
	const placed = place(url.pathname, request.method, base.prefix);
	switch (placed.kind) {
		case "outside":
			return notFound(`no such route: this Worker serves ${base.prefix}/… (BASE_PATH) and POST ${REGISTRATION_PATH}`);
		case "redirect":
			return new Response(null, { status: 308, headers: { location: placed.location + url.search } });
		case "route":
			return routerFor(placed.base).fetch(request, env, ctx);
	}
}
