import { basePath } from "./base-path";
import { MAX_INTEGRATION_LENGTH } from "../schema";
import { MAX_IMPORT_BODY_BYTES, MAX_IMPORT_ROWS } from "./import";

/*
 * The HTTP API as an OpenAPI 3.1 document, served at GET /api/openapi.json. Written by hand
 * beside the routes (src/api.ts); test/api/openapi.test.ts keeps it true: every route is
 * documented and every documented operation exists, and real answers match their schemas.
 */

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, description: string) => ({ description, content: { "application/json": { schema } } });
const error = (description: string) => json(ref("Error"), description);
const ms = { type: "integer", minimum: 0, description: "milliseconds since the epoch; 0 = never / not set" };
const count = { type: "integer", minimum: 0 };
const adminOnly = { security: [{ adminToken: [] }, { cloudflareAccess: [] }] };
const adminErrors = {
	"401": error("missing or wrong admin token, and no valid Cloudflare Access sign-in (expired, not yet valid, for another application or team, not signed by the team's keys)"),
	"403": error("signed in with Cloudflare Access, but not on ACCESS_ADMINS"),
	"503": error("neither ADMIN_TOKEN nor Cloudflare Access is set (the admin API is disabled), Access is half-configured, or the Access team's keys could not be fetched"),
};
const pieceParams = [
	{ name: "space", in: "path", required: true, schema: { type: "string", pattern: "^did:key:z[1-9A-HJ-NP-Za-km-z]{40,120}$" }, description: "the space DID" },
	{ name: "pieceId", in: "path", required: true, schema: { type: "string" }, description: "`fid1:` + 43 base64url characters, or the URI spelling `of:fid1:…` (the `of:` is dropped); kinded ids and legacy `baed…` CIDs are refused" },
];

const tickSummary = {
	type: "object",
	required: ["scheduledTime", "listed", "due", "dispatched", "skipped", "failed", "listCalls", "sendCalls", "lanes", "handedOver", "ms"],
	properties: {
		scheduledTime: ms,
		listed: count,
		due: count,
		dispatched: count,
		skipped: count,
		failed: { ...count, description: "messages whose send failed (their pieces stay due)" },
		listCalls: count,
		sendCalls: count,
		lanes: count,
		handedOver: { ...count, description: "fan-out hand-overs queued (other lanes, or the rest of lane 0)" },
		ms: { ...count, description: "how long the tick's own invocation took" },
	},
};

const piece = {
	type: "object",
	required: ["space", "pieceId", "integration", "createdAt", "updatedAt", "disabledAt", "lastRun", "status", "failures", "nextRunAt", "enabled", "lastRunMaxLagMs"],
	properties: {
		space: { type: "string" },
		pieceId: { type: "string" },
		integration: { type: "string" },
		createdAt: ms,
		updatedAt: ms,
		disabledAt: { ...ms, description: "when it was disabled; 0 while enabled" },
		disabledBy: { enum: ["operator", "failures", "not-found"], description: "while disabled: who disabled it (an operator, its third failure in a row, or the runtime finding no such piece or no bgUpdater); absent while enabled and on entries disabled before it was kept" },
		lastRun: { ...ms, description: "end of the last recorded run the runtime answered, success or failure (the replaced service's meaning)" },
		lastSuccessAt: { ...ms, description: "end of the last recorded successful run" },
		status: { type: "string", description: "Success, the last error, Disabled: …, Disabled via UI, Initializing, Runtime unavailable since …" },
		failures: { ...count, description: "consecutive failures of the piece" },
		nextRunAt: { ...ms, description: "the first tick that runs it again; 0 = the next tick" },
		lastFailureAt: ms,
		recent: { type: "string", pattern: "^[sfduk]{0,12}$", description: "the last recorded outcomes, oldest first: s success, f failure, d disabled, u runtime unavailable, k skipped (busy)" },
		enabled: { type: "boolean" },
		lastRunMaxLagMs: { ...count, description: "how old lastRun may be although the piece ran (write on change); 0 when every outcome is recorded" },
	},
};

const fullPiece = {
	...piece,
	required: [...piece.required, "lastRunId", "lastError", "lastDurationMs", "unavailableSince"],
	properties: {
		...piece.properties,
		lastRunId: { type: "string" },
		lastError: { type: "string" },
		lastDurationMs: count,
		unavailableSince: ms,
		history: { type: "array", items: { oneOf: [ref("RunRecord"), ref("AdminRecord")] }, description: "recorded runs and admin actions, oldest first (at most 20)" },
	},
};

/** The OpenAPI document of this Worker's HTTP API, its paths relative to BASE_PATH (`openApiFor`). */
export const openApiDocument = {
	openapi: "3.1.0",
	info: {
		title: "Background piece scheduler",
		version: "1",
		description: "Registers Common Fabric pieces whose bgUpdater runs server-side every minute, and steers them. Admin operations need `Authorization: Bearer <ADMIN_TOKEN>` (any one of its tokens) or a Cloudflare Access sign-in (`Cf-Access-Jwt-Assertion`) of someone on ACCESS_ADMINS.",
	},
	paths: {
		"/api/health": {
			get: {
				summary: "Whether the service can do its job",
				responses: { "200": json(ref("Health"), "always, while the Worker answers; `status` says ok or degraded") },
			},
		},
		"/api/stats": {
			get: {
				summary: "Counts by state, the last tick, the last hour",
				...adminOnly,
				responses: { "200": json(ref("Stats"), "the figures"), ...adminErrors },
			},
		},
		"/api/runtime/reports": {
			post: {
				summary: "Protocol 2: a runtime reports the outcomes of runs it accepted (docs/runtime-protocol.md)",
				description: "Signed by the runtime (bg-protocol: 2, bg-signer in RUNTIME_SIGNERS, bg-timestamp, bg-signature over the bg-report-v2 canonical string). Each report carries the ticket its run was dispatched with.",
				requestBody: { required: true, content: { "application/json": { schema: ref("ReportBody") } } },
				responses: {
					"200": json(ref("ReportAnswer"), "what became of each report"),
					"401": json(ref("ProtocolError"), "unsigned, tampered, stale, future, replayed, or not signed by an allowed runtime"),
					"413": json(ref("ProtocolError"), "a body announced past 512 KB"),
					"503": json(ref("ProtocolError"), "a fault of ours (KV unavailable): send the reports again, after Retry-After"),
				},
			},
		},
		"/api/openapi.json": {
			get: { summary: "This document", responses: { "200": { description: "OpenAPI 3.1", content: { "application/json": { schema: { type: "object" } } } } } },
		},
		"/api/integrations/bg": {
			post: {
				summary: "Register a piece (the replaced service's route); re-registering re-enables it",
				description: "Open unless REGISTRATION_TOKEN is set; pages of origins outside ALLOWED_ORIGINS are refused. Each client (CF-Connecting-IP) may register REGISTRATION_LIMITER's number of times a period (wrangler.toml; 60 a minute as shipped).",
				requestBody: { required: true, content: { "application/json": { schema: ref("Registration") } } },
				responses: {
					"200": json(ref("Success"), "registered"),
					"400": error("malformed body or ids"),
					"401": error("REGISTRATION_TOKEN is set and the bearer token is missing or wrong"),
					"403": error("the page's origin is not in ALLOWED_ORIGINS"),
					"409": error("the space already has MAX_PIECES_PER_SPACE pieces; or the runtime found this piece missing (no such piece or no bgUpdater) less than an hour ago, so it stays disabled until Retry-After"),
					"413": error("body over 64 KB"),
					"429": error("too many registrations from this client (REGISTRATION_LIMITER; Retry-After: the period), or this piece was written a moment ago (Retry-After: 1)"),
					"507": error("the registry holds MAX_PIECES pieces (as the last tick counted): no new piece is taken; known pieces still re-register"),
				},
			},
			get: {
				summary: "List pieces, one page (from list metadata)",
				...adminOnly,
				parameters: [
					{ name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 } },
					{ name: "cursor", in: "query", schema: { type: "string" }, description: "from the previous page" },
					{ name: "space", in: "query", schema: { type: "string" }, description: "only this space's pieces" },
				],
				responses: { "200": json(ref("PiecePage"), "one page"), "400": error("bad limit, space or cursor"), ...adminErrors },
			},
		},
		"/api/integrations/bg/{space}/{pieceId}": {
			parameters: pieceParams,
			get: {
				summary: "One piece's whole entry, with its recent runs (public, as the replaced service's check)",
				responses: { "200": json(ref("PieceEntry"), "the entry"), "400": error("malformed ids"), "404": error("not registered") },
			},
			patch: {
				summary: "Enable or disable a piece",
				...adminOnly,
				requestBody: { required: true, content: { "application/json": { schema: ref("Patch") } } },
				responses: {
					"200": json({ type: "object", required: ["success", "message", "piece"], properties: { success: { const: true }, message: { type: "string" }, piece: ref("PieceEntry") } }, "changed"),
					"400": error("malformed body or ids"),
					"404": error("not registered"),
					"429": error("this piece was written a moment ago; try again in a second"),
					...adminErrors,
				},
			},
			delete: {
				summary: "Delete a piece",
				...adminOnly,
				responses: { "200": json(ref("Success"), "deleted"), "400": error("malformed ids"), "404": error("not registered"), ...adminErrors },
			},
		},
		"/api/integrations/bg/{space}/{pieceId}/run": {
			parameters: pieceParams,
			post: {
				summary: "Queue a run now, outside the tick (delivered a second later, after the request's line in the piece's history)",
				...adminOnly,
				responses: {
					"202": json({ type: "object", required: ["success", "message", "runId"], properties: { success: { const: true }, message: { type: "string" }, runId: { type: "string" } } }, "queued"),
					"400": error("malformed ids"),
					"404": error("not registered"),
					"409": error("the piece is disabled; enable it first"),
					...adminErrors,
				},
			},
		},
		"/api/admin/import": {
			post: {
				summary: "Import registry entries: the replaced service's array, or this Worker's export (docs/switching-over.md)",
				description: `Upserts each row: one that fails validation is refused with its reason while the others go in; an entry newer than its row (by max(updatedAt, lastRun)) is kept; a row that changes nothing writes nothing, so importing twice writes nothing the second time. At most ${MAX_IMPORT_ROWS} rows and ${MAX_IMPORT_BODY_BYTES} bytes per request. A row KV refuses to write for its one write per key per second answers \`retry\`: send it again after a second. \`dryRun\` writes nothing and answers the same.`,
				...adminOnly,
				requestBody: { required: true, content: { "application/json": { schema: ref("ImportBody") } } },
				responses: {
					"200": json(ref("ImportAnswer"), "what became of each row"),
					"400": error("malformed body, or more than 100 rows"),
					"413": error("body over 1 MB"),
					...adminErrors,
				},
			},
		},
	},
	components: {
		securitySchemes: {
			adminToken: { type: "http", scheme: "bearer", description: "ADMIN_TOKEN: any one of its tokens (several during a rotation)" },
			cloudflareAccess: { type: "apiKey", in: "header", name: "Cf-Access-Jwt-Assertion", description: "Cloudflare Access adds it to requests it lets through (ACCESS_TEAM_DOMAIN, ACCESS_AUD); its identity must be on ACCESS_ADMINS" },
		},
		schemas: {
			Error: { type: "object", required: ["success", "error"], properties: { success: { const: false }, error: { type: "string" } } },
			ProtocolError: { type: "object", required: ["error"], properties: { error: { type: "string" } } },
			ReportBody: {
				type: "object",
				required: ["reports"],
				properties: {
					reports: {
						type: "array",
						maxItems: 100,
						items: {
							type: "object",
							required: ["ticket", "runId", "outcome", "durationMs"],
							properties: { ticket: { type: "string" }, runId: { type: "string" }, outcome: { enum: ["ok", "failed"] }, error: { type: "string" }, notFound: { type: "boolean", description: "with failed: no such piece or no bgUpdater (protocol 1's 404); the piece is disabled at once" }, durationMs: count },
						},
					},
				},
			},
			ReportAnswer: {
				type: "object",
				required: ["results"],
				properties: {
					results: {
						type: "array",
						items: { type: "object", required: ["runId", "status"], properties: { runId: { type: "string" }, status: { enum: ["recorded", "dropped", "unknown", "late", "invalid"] } } },
					},
				},
			},
			Success: { type: "object", required: ["success", "message"], properties: { success: { const: true }, message: { type: "string" } } },
			Registration: {
				type: "object",
				required: ["space", "pieceId", "integration"],
				properties: {
					space: { type: "string", description: "the space DID (did:key:z6Mk…)" },
					pieceId: { type: "string", description: "fid1:… or of:fid1:… (one piece)" },
					integration: { type: "string", minLength: 1, maxLength: MAX_INTEGRATION_LENGTH, description: "what registered it, e.g. gmail" },
				},
			},
			Patch: { type: "object", required: ["enabled"], properties: { enabled: { type: "boolean" } } },
			ImportBody: {
				type: "object",
				required: ["rows"],
				properties: {
					rows: {
						type: "array",
						maxItems: MAX_IMPORT_ROWS,
						items: {
							type: "object",
							required: ["space", "pieceId", "integration", "createdAt", "updatedAt", "lastRun", "status"],
							properties: {
								space: { type: "string" },
								pieceId: { type: "string", description: "fid1:… or of:fid1:… (one piece)" },
								integration: { type: "string", minLength: 1, maxLength: MAX_INTEGRATION_LENGTH },
								createdAt: ms,
								updatedAt: ms,
								disabledAt: { type: ["integer", "null"], minimum: 0, description: "absent, null or 0: enabled" },
								lastRun: ms,
								status: { type: "string", description: "kept as given (clipped past 4,096 characters)" },
								failures: { type: "integer", minimum: 0, maximum: 3, description: "this Worker's export only; else 0" },
								nextRunAt: { ...ms, description: "this Worker's export only; else 0 (due at the next tick)" },
								lastFailureAt: { ...ms, description: "this Worker's export only" },
								lastSuccessAt: { ...ms, description: "this Worker's export only; else lastRun when status is Success" },
							},
						},
					},
					dryRun: { type: "boolean", description: "decide every row, write nothing" },
				},
			},
			ImportAnswer: {
				type: "object",
				required: ["success", "dryRun", "results", "counts"],
				properties: {
					success: { const: true },
					dryRun: { type: "boolean" },
					results: {
						type: "array",
						items: {
							type: "object",
							required: ["index", "outcome"],
							properties: {
								index: { ...count, description: "the row's place in rows" },
								space: { type: "string" },
								pieceId: { type: "string", description: "normalised (no of:)" },
								outcome: { enum: ["created", "updated", "unchanged", "refused", "retry"] },
								reason: { type: "string", description: "why it was refused, kept, or must be sent again" },
							},
						},
					},
					counts: {
						type: "object",
						required: ["created", "updated", "unchanged", "refused", "retry"],
						properties: { created: count, updated: count, unchanged: count, refused: count, retry: count },
					},
				},
			},
			Piece: piece,
			PieceEntry: fullPiece,
			RunRecord: {
				type: "object",
				required: ["at", "outcome", "durationMs"],
				properties: { at: ms, outcome: { enum: ["success", "failure", "disabled", "unavailable", "skipped"] }, durationMs: count, error: { type: "string" }, skippedFor: { type: "string", description: "a skipped run: the run that was still going" } },
			},
			AdminRecord: {
				type: "object",
				required: ["at", "outcome", "action", "by"],
				properties: {
					at: ms,
					outcome: { const: "admin" },
					action: { enum: ["enable", "disable", "run-now", "import"] },
					by: { type: "string", description: "who: access:<email>, access-service-token:<client id>, or token:<first 8 hex of the token's SHA-256>" },
				},
			},
			PiecePage: {
				type: "object",
				required: ["success", "pieces", "cursor", "complete"],
				properties: { success: { const: true }, pieces: { type: "array", items: ref("Piece") }, cursor: { type: ["string", "null"] }, complete: { type: "boolean" } },
			},
			TickSummary: tickSummary,
			Health: {
				type: "object",
				required: ["status", "service", "time", "did", "runtime", "lastTick", "registry", "problems", "notes"],
				properties: {
					status: { enum: ["ok", "degraded"] },
					service: { type: "string" },
					time: ms,
					did: { type: ["string", "null"], description: "the service's did:key; runtimes allow it" },
					runtime: {
						type: ["object", "null"],
						required: ["via", "protocol", "timeoutMs", "state", "since", "reason"],
						properties: {
							via: { enum: ["service-binding", "url"] },
							protocol: { enum: [1, 2], description: "the runtime protocol spoken (RUNTIME_PROTOCOL)" },
							timeoutMs: count,
							state: { enum: ["ok", "unavailable"], description: "what the last runs found: unavailable = silent, refusing, or not a piece runtime" },
							since: { type: ["integer", "null"], description: "ms since the epoch; null if no outage was ever seen" },
							reason: { type: ["string", "null"] },
						},
					},
					lastTick: { oneOf: [ref("TickSummary"), { type: "null" }] },
					registry: {
						type: "object",
						required: ["pieces", "maxPieces", "state"],
						description: "the registry against its cap, as the last tick counted it (about a minute old)",
						properties: {
							pieces: { type: ["integer", "null"], minimum: 0, description: "null before the first tick" },
							maxPieces: { ...count, description: "MAX_PIECES" },
							state: { enum: ["ok", "near", "full"], description: "near from 90 % of MAX_PIECES, full at it (new pieces refused, 507); both are problems" },
						},
					},
					problems: { type: "array", items: { type: "string" } },
					notes: { type: "array", items: { type: "string" }, description: "what would be a problem deployed but is expected when the Worker is asked on localhost (npm start): the default passphrase" },
				},
			},
			Stats: {
				type: "object",
				required: ["success", "time", "counts", "complete", "lastTick", "lastHour"],
				properties: {
					success: { const: true },
					time: ms,
					counts: {
						type: "object",
						required: ["total", "enabled", "disabled", "disabledByFailures", "failing", "byState"],
						properties: {
							total: count,
							enabled: count,
							disabled: { ...count, description: "every disabled piece: by an operator, by its third failure in a row, or by the runtime finding no such piece" },
							disabledByFailures: { ...count, description: "of those, the pieces their failures disabled (the third in a row, or one not-found run)" },
							failing: { ...count, description: "enabled pieces with consecutive failures (they run again); the four states never overlap" },
							byState: { type: "object", required: ["ok", "pending", "failing", "disabled"], properties: { ok: count, pending: count, failing: count, disabled: count } },
						},
					},
					complete: { type: "boolean", description: "false past 900,000 pieces: the counts cover the first 900,000" },
					lastTick: { oneOf: [ref("TickSummary"), { type: "null" }] },
					lastHour: {
						type: "object",
						required: ["ticks", "dispatched", "failedPieces", "perMinute"],
						properties: {
							ticks: count,
							dispatched: { ...count, description: "runs the ticks dispatched" },
							failedPieces: { ...count, description: "pieces that failed at least once" },
							perMinute: {
								type: "array",
								description: "the last 60 minutes, the current one last: runs the tick of that minute dispatched, and pieces whose last failure fell in it",
								items: { type: "object", required: ["at", "dispatched", "failed"], properties: { at: ms, dispatched: count, failed: count } },
							},
						},
					},
				},
			},
		},
	},
} as const;

/**
 * The document as served: its server is BASE_PATH, where every path is answered (the
 * registration route is also answered at its plain path, for the shell).
 */
export function openApiFor(env: Pick<Env, "BASE_PATH">) {
	const base = basePath(env);
	return { ...openApiDocument, servers: [{ url: ("prefix" in base && base.prefix) || "/" }] };
}
