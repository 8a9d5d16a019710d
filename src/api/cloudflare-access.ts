import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet } from "jose";
import { logError } from "../log";
import { type AccessAdmins, type AccessIdentity, allowsNoOne, isAccessAdmin, parseAccessAdmins } from "../policy/access-admins";
import { listSetting } from "../util/text";
import { StatusError } from "./errors";

/*
 * Cloudflare Access in front of the Worker (docs/cloudflare-access.md): Access signs each
 * request it lets through with an RS256 JWT in `Cf-Access-Jwt-Assertion`, made with the team's
 * keys (published at https://<team>.cloudflareaccess.com/cdn-cgi/access/certs). A request is
 * an Access admin when that JWT checks out (signature, audience, issuer, expiry, not-before)
 * and its identity is on ACCESS_ADMINS. The header is trusted for nothing else: anyone can send
 * one, only Access can sign one.
 */

/** The settings that turn Access sign-in on: all three in `[vars]`. */
export type CloudflareAccessEnv = Pick<Env, "ACCESS_TEAM_DOMAIN" | "ACCESS_AUD" | "ACCESS_ADMINS">;

/** Access as configured: off (nothing set), on, or half-configured, which never admits anyone. */
export type AccessConfig = { kind: "off" } | { kind: "problem"; problem: string } | { kind: "on"; issuer: string; certsUrl: string; audiences: string[]; admins: AccessAdmins };

/** The request header Access adds (its cookie, CF_Authorization, carries the same JWT). */
export const ACCESS_HEADER = "cf-access-jwt-assertion";

/**
 * Keys are kept per isolate this long before they are fetched again. Access rotates its keys
 * every few weeks and publishes the new one beside the old; an unknown `kid` fetches at once
 * (below), so this only bounds how long a withdrawn key stays trusted.
 */
export const KEYS_MAX_AGE_MS = 10 * 60_000;

/** An unknown `kid` refetches the keys at most this often, so made-up kids cannot make every request a fetch. */
export const UNKNOWN_KID_COOLDOWN_MS = 5_000;

/** The certs fetch's own deadline: a request waits no longer for Access's keys. */
const CERTS_TIMEOUT_MS = 5_000;

/** Seconds of clock skew allowed on `exp` and `nbf`: a Worker's clock stands still between I/O, so a JWT issued this second can look a second early. */
const CLOCK_TOLERANCE_S = 60;

/** A team domain as Access names it: `<team>.cloudflareaccess.com`, with or without `https://`. */
const TEAM_DOMAIN = /^(?:https:\/\/)?([a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.cloudflareaccess\.com)\/?$/i;

/** Reads the three settings. Any one set without the others is a problem, never an open door. */
export function accessConfig(env: CloudflareAccessEnv): AccessConfig {
	const team = env.ACCESS_TEAM_DOMAIN?.trim() ?? "";
	const audiences = listSetting(env.ACCESS_AUD);
	const admins = parseAccessAdmins(env.ACCESS_ADMINS);
	if (!team && !audiences.length && allowsNoOne(admins)) return { kind: "off" };
	if (!team) return problem("ACCESS_TEAM_DOMAIN is not set (the team domain, <team>.cloudflareaccess.com)");
	const host = TEAM_DOMAIN.exec(team)?.[1]?.toLowerCase();
	if (!host) return problem(`ACCESS_TEAM_DOMAIN is "${team.slice(0, 100)}", not a team domain such as myteam.cloudflareaccess.com`);
	if (!audiences.length) return problem("ACCESS_AUD is not set (the Access application's Application Audience (AUD) tag)");
	if (allowsNoOne(admins)) return problem('ACCESS_ADMINS is empty: name the emails, @domains or service token client ids that are admins (or "*" for whoever Access admits)');
	const issuer = `https://${host}`;
	return { kind: "on", issuer, certsUrl: `${issuer}/cdn-cgi/access/certs`, audiences, admins };
}

function problem(text: string): AccessConfig {
	return { kind: "problem", problem: `Cloudflare Access is half-configured: ${text}; Access sign-ins are refused meanwhile` };
}

/**
 * The identity a `Cf-Access-Jwt-Assertion` vouches for, if it is an admin. Throws 401 for a
 * JWT that does not check out, 403 for a valid one of someone not on ACCESS_ADMINS, and 503
 * when the team's keys cannot be fetched (an outage of the certs is not a wrong sign-in, and
 * never lets a request through unchecked).
 */
export async function accessAdmin(assertion: string, config: Extract<AccessConfig, { kind: "on" }>): Promise<AccessIdentity> {
	const payload = await verified(assertion, config);
	const identity = identityOf(payload);
	if (!identity) throw new StatusError(401, "Cloudflare Access sign-in refused: the token names no email and no service token");
	if (!isAccessAdmin(identity, config.admins)) {
		const who = "email" in identity ? identity.email : `service token ${identity.clientId}`;
		throw new StatusError(403, `${who} is signed in with Cloudflare Access but is not an admin here (ACCESS_ADMINS)`);
	}
	return identity;
}

async function verified(assertion: string, config: Extract<AccessConfig, { kind: "on" }>) {
	const options = { algorithms: ["RS256"], issuer: config.issuer, audience: config.audiences, requiredClaims: ["exp"], clockTolerance: CLOCK_TOLERANCE_S };
	let keys = await teamKeys(config.certsUrl, false);
	try {
		return (await jwtVerify(assertion, keys.set, options)).payload;
	} catch (error) {
		// A key Access began signing with since the keys were fetched: fetch them once more.
		if (!(error instanceof errors.JWKSNoMatchingKey) || Date.now() - keys.fetchedAt < UNKNOWN_KID_COOLDOWN_MS) throw refusal(error);
	}
	keys = await teamKeys(config.certsUrl, true);
	try {
		return (await jwtVerify(assertion, keys.set, options)).payload;
	} catch (error) {
		throw refusal(error);
	}
}

function identityOf(payload: Record<string, unknown>): AccessIdentity | null {
	if (typeof payload.email === "string" && payload.email) return { email: payload.email };
	// A service token's JWT: its client id, and no email.
	if (typeof payload.common_name === "string" && payload.common_name) return { clientId: payload.common_name };
	return null;
}

/** A failed check as the caller's 401, saying which check; anything else is a fault of ours. */
function refusal(error: unknown): unknown {
	if (!(error instanceof errors.JOSEError)) return error;
	const why =
		error instanceof errors.JWTExpired
			? "it has expired: sign in again"
			: error instanceof errors.JWTClaimValidationFailed
				? ({ nbf: "it is not valid yet", iss: "it was issued by another team than ACCESS_TEAM_DOMAIN", aud: "it is for another Access application than ACCESS_AUD", exp: "it has no expiry" }[error.claim] ?? `its ${error.claim} claim is wrong`)
				: error instanceof errors.JOSEAlgNotAllowed
					? "it is not signed with RS256"
					: error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWSSignatureVerificationFailed
						? "it is not signed by the team's keys"
						: "it is not a well-formed JWT";
	return new StatusError(401, `Cloudflare Access sign-in refused: ${why}`);
}

interface TeamKeys {
	set: ReturnType<typeof createLocalJWKSet>;
	fetchedAt: number;
}

/** The team's keys per certs URL, kept for this isolate's life (at most KEYS_MAX_AGE_MS each). */
const keysByUrl = new Map<string, TeamKeys>();

/**
 * The team's keys, fetched when there are none, they are older than KEYS_MAX_AGE_MS, or
 * `fresh` asks. If a fetch fails, keys already held are used on (Access keeps a key valid
 * for days after a rotation); with none held, the request gets 503.
 */
async function teamKeys(certsUrl: string, fresh: boolean): Promise<TeamKeys> {
	const held = keysByUrl.get(certsUrl);
	if (held && !fresh && Date.now() - held.fetchedAt < KEYS_MAX_AGE_MS) return held;
	try {
		const response = await fetch(certsUrl, { signal: AbortSignal.timeout(CERTS_TIMEOUT_MS), headers: { accept: "application/json" } });
		if (!response.ok) throw new Error(`HTTP ${response.status} from ${certsUrl}`);
		const keys: TeamKeys = { set: createLocalJWKSet((await response.json()) as JSONWebKeySet), fetchedAt: Date.now() };
		keysByUrl.set(certsUrl, keys);
		return keys;
	} catch (error) {
		logError("access-keys-unavailable", error, { certsUrl, held: Boolean(held) });
		if (held) return held;
		throw new StatusError(503, "Cloudflare Access sign-in cannot be checked: the team's keys could not be fetched; try again shortly, or use an admin token");
	}
}
