// zod's "mini" build: the same validation as classic zod in a twentieth of the bundle
// (≈12 KB against ≈450 KB minified), which keeps the Worker's cold start small.
import * as z from "zod/mini";
import { SHARD_COUNT } from "./registry/keys";

/** A did:key in base58btc multibase; an Ed25519 space DID is `did:key:z6Mk` + 44 characters. */
const SPACE = /^did:key:z[1-9A-HJ-NP-Za-km-z]{40,120}$/;
/**
 * Piece ids as Common Fabric's runner takes them: a tagged hash, `fid1:` + unpadded base64url
 * of 32 bytes, bare or written as a URI (`of:fid1:…`); both spellings are one piece.
 */
const FID1 = /^(?:of:)?fid1:[A-Za-z0-9_-]{43}$/;
/** A kinded id (`computed:fid1:…`, `data:fid1:…`) names a value, not a piece: the runner refuses it. */
const KINDED = /^(?!of:)[a-z][a-z0-9+.-]*:fid1:/;
/** A legacy base32 CID (`baed…`, or `of:baed…`), which the runner no longer parses. */
const LEGACY = /^(?:of:)?baed[a-z2-7]{20,}$/;
/** No control or invisible formatting characters in an integration name. */
const PRINTABLE = /^[^\p{Cc}\p{Cf}\p{Zl}\p{Zp}]+$/u;

/** Longest integration name; keeps list metadata far below KV's 1,024-byte limit. */
export const MAX_INTEGRATION_LENGTH = 64;

/** "<name> must be <kind>" for a value of another type (a missing one: see firstIssue). */
function typeError(name: string, kind: string) {
	return { error: `${name} must be ${kind}` };
}

/** A space DID. */
export const spaceSchema = z.string(typeError("space", "a string")).check(z.regex(SPACE, "space must be a did:key (did:key:z6Mk…)"));

/** What is wrong with a piece id, or null for one the runner takes. */
export function pieceIdProblem(id: string): string | null {
	if (FID1.test(id)) return null;
	if (LEGACY.test(id)) return "pieceId is a legacy CID (baed…), which Common Fabric's runner no longer runs: register the piece's fid1: id";
	if (KINDED.test(id)) return `pieceId is a kinded id (${id.slice(0, id.indexOf(":"))}:fid1:…), which names a value, not a piece: register the piece's own id (fid1:… or of:fid1:…)`;
	return "pieceId must be a piece id (fid1: + 43 base64url characters, or the same as a URI, of:fid1:…)";
}

/** A piece id, normalised: the URI spelling's `of:` is dropped, so both spellings are one piece. */
export const pieceIdSchema = z.pipe(
	z.string(typeError("pieceId", "a string")).check(z.refine((id: string) => pieceIdProblem(id) === null, { error: (issue) => pieceIdProblem(String(issue.input)) ?? "pieceId must be a piece id" })),
	z.transform((id: string) => (id.startsWith("of:") ? id.slice(3) : id)),
);

/** An integration name: what registered the piece. */
export const integrationSchema = z
	.string(typeError("integration", "a string"))
	.check(
		z.trim(),
		z.minLength(1, "integration must not be empty"),
		z.maxLength(MAX_INTEGRATION_LENGTH, `integration must be at most ${MAX_INTEGRATION_LENGTH} characters`),
		z.regex(PRINTABLE, "integration must not contain control characters"),
		// A lone surrogate is stored fine, but breaks every strict JSON reader of it afterwards
		// (jq, a strict runtime refusing the run): refused here, once.
		z.refine((text: string) => text.isWellFormed(), "integration must be valid Unicode text (it has a lone surrogate)"),
	);

/** The body of `POST /api/integrations/bg`. Unknown fields are ignored, as before. */
export const registrationSchema = z.object(
	{ space: spaceSchema, pieceId: pieceIdSchema, integration: integrationSchema },
	{ error: "body must be a JSON object" },
);

/** The path parameters naming one piece. */
export const pieceRefSchema = z.object({ space: spaceSchema, pieceId: pieceIdSchema });

/** The body of `PATCH /api/integrations/bg/:space/:pieceId`. */
export const patchSchema = z.object(
	{ enabled: z.boolean(typeError("enabled", "true or false")) },
	{ error: "body must be a JSON object" },
);

/** Why a run message was sent. */
export const RUN_KINDS = ["tick", "register", "manual"] as const;

/**
 * The queue message: one run of one piece (docs/messages.md). It carries what the consumer
 * needs to call the runtime; a few hundred bytes, far below the 128 KB message limit.
 */
export const runMessageSchema = z.object({
	v: z.literal(1),
	kind: z.enum(RUN_KINDS),
	space: spaceSchema,
	pieceId: pieceIdSchema,
	integration: integrationSchema,
	runId: z.string().check(z.minLength(1), z.maxLength(300)),
	scheduledTime: z.int().check(z.nonnegative()),
	/** Tick messages: when it is aimed to be delivered (src/fanout.ts, aimedAt), ms. */
	dueAt: z.optional(z.int().check(z.nonnegative())),
	/** Tick messages: what the list metadata said of the piece (src/policy/record.ts). */
	seen: z.optional(
		z.object({
			updatedAt: z.int().check(z.nonnegative()),
			lastRun: z.int().check(z.nonnegative()),
			steady: z.boolean(),
		}),
	),
});
export type RunMessage = z.output<typeof runMessageSchema>;

/**
 * A fan-out hand-over on the `bg-piece-fanout` queue (docs/messages.md): the rest of one lane
 * of one tick, from a shard and a KV cursor within it.
 */
export const fanoutWorkSchema = z.object({
	v: z.literal(1),
	scheduledTime: z.int().check(z.nonnegative()),
	/** When the tick began (ms): a lane still sending a period later is abandoned. */
	startedAt: z.int().check(z.nonnegative()),
	lane: z.int().check(z.gte(0), z.lt(SHARD_COUNT)),
	shard: z.int().check(z.gte(0), z.lt(SHARD_COUNT)),
	cursor: z.optional(z.string().check(z.minLength(1), z.maxLength(4096))),
	/** How many of the lane's due pieces came before (its plan's place); 0 when absent. */
	position: z.optional(z.int().check(z.nonnegative())),
});
export type FanoutWork = z.output<typeof fanoutWorkSchema>;

/**
 * The first problem zod found, as one sentence for a 4xx answer or a log line. A field absent
 * from `input` is named as required (zod reports it as a wrong type).
 */
export function firstIssue(error: { issues: readonly z.core.$ZodIssue[] }, input?: unknown): string {
	const issue = error.issues[0];
	if (!issue) return "invalid input";
	const [field, ...deeper] = issue.path;
	if (issue.code === "invalid_type" && typeof field === "string" && !deeper.length && input && typeof input === "object" && !Object.hasOwn(input, field)) {
		return `${field} is required`;
	}
	return issue.message;
}
