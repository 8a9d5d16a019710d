import { AutoRouter, type IRequest } from "itty-router";
import { corsFor, requireRegistrant, withCors } from "./api/access";
import { requireAdmin } from "./api/auth";
import { errorResponse, notFound } from "./api/errors";
import { health } from "./api/health";
import { deletePiece, getPiece, listPiecesRoute, patchPiece, runPieceNow } from "./api/pieces";
import { register } from "./api/registration";
import { openApiDocument } from "./api/openapi";
import { stats } from "./api/stats";
import { receiveReports } from "./reports";

type Args = [Env, ExecutionContext];

const admin = (request: IRequest, env: Env) => requireAdmin(request, env);
const registrant = (request: IRequest, env: Env) => requireRegistrant(request, env);
const PIECE = "/api/integrations/bg/:space/:pieceId";

/** The HTTP API. Handlers return data (sent as JSON) or throw a StatusError. */
export const api = AutoRouter<IRequest, Args>({
	// CORS for the origins ALLOWED_ORIGINS names (default any): preflights answered here.
	before: [(request: IRequest, env: Env) => corsFor(env).preflight(request)],
	finally: [withCors],
	catch: errorResponse,
	missing: notFound,
})
	.get("/api/health", health)
	.get("/api/stats", admin, stats)
	.get("/api/openapi.json", () => openApiDocument)
	.post("/api/integrations/bg", registrant, register)
	.get("/api/integrations/bg", admin, listPiecesRoute)
	.get(PIECE, getPiece)
	.patch(PIECE, admin, patchPiece)
	.delete(PIECE, admin, deletePiece)
	.post(`${PIECE}/run`, admin, runPieceNow)
	// Protocol 2: runtimes report outcomes here, signed with their own keys (src/reports.ts).
	.post("/api/runtime/reports", (request: IRequest, env: Env) => receiveReports(request, env));
