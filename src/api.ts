import { AutoRouter, cors, type IRequest } from "itty-router";
import { requireAdmin } from "./api/auth";
import { errorResponse, notFound } from "./api/errors";
import { health } from "./api/health";
import { deletePiece, getPiece, listPiecesRoute, patchPiece, runPieceNow } from "./api/pieces";
import { register } from "./api/registration";

type Args = [Env, ExecutionContext];

/**
 * CORS: the registering component posts from the page's origin (another origin than this
 * Worker), so any origin may call the API; admin routes still need the bearer token.
 */
const { preflight, corsify } = cors({
	origin: "*",
	allowMethods: ["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
	allowHeaders: ["Content-Type", "Authorization"],
	maxAge: 86_400,
});

const admin = (request: IRequest, env: Env) => requireAdmin(request, env);
const PIECE = "/api/integrations/bg/:space/:pieceId";

/** The HTTP API. Handlers return data (sent as JSON) or throw a StatusError. */
export const api = AutoRouter<IRequest, Args>({
	before: [preflight],
	finally: [corsify],
	catch: errorResponse,
	missing: notFound,
})
	.get("/api/health", health)
	.post("/api/integrations/bg", register)
	.get("/api/integrations/bg", admin, listPiecesRoute)
	.get(PIECE, getPiece)
	.patch(PIECE, admin, patchPiece)
	.delete(PIECE, admin, deletePiece)
	.post(`${PIECE}/run`, admin, runPieceNow);
