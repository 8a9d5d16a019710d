import { listSetting } from "../util/text";

const encoder = new TextEncoder();

/**
 * The admin tokens ADMIN_TOKEN holds: one, or several separated by commas or whitespace, each
 * valid alike. Several at once let a rotation switch clients over without a moment of refusal:
 * put "new old", move every client to the new one, then put "new" alone. One secret rather than
 * a second one (ADMIN_TOKEN_PREVIOUS): each step is one `wrangler secret put`, and a token per
 * client (CLI, CI, a colleague) is as easy as two. A bearer token has no whitespace, and one
 * made with `openssl rand -hex 32` no comma, so neither can split a token.
 */
export function adminTokens(env: Pick<Env, "ADMIN_TOKEN">): string[] {
	return listSetting(env.ADMIN_TOKEN);
}

/**
 * The fingerprint of the admin token `given` is, or null if it is none of them. It is compared
 * with every configured token, in constant time over SHA-256 digests and without stopping at
 * the first match, so timing tells neither a token's content, its length, nor which one it is.
 */
export async function matchAdminToken(given: string, tokens: readonly string[]): Promise<string | null> {
	const [digest, ...expected] = await Promise.all([given, ...tokens].map(sha256));
	let matched = false;
	for (const candidate of expected) matched = crypto.subtle.timingSafeEqual(digest!, candidate) || matched;
	return matched ? fingerprintOf(digest!) : null;
}

/**
 * A token's fingerprint: the first 8 hex characters of its SHA-256, which names it in logs and
 * history without revealing it (`printf %s "$TOKEN" | sha256sum | cut -c1-8` prints the same).
 */
export async function tokenFingerprint(token: string): Promise<string> {
	return fingerprintOf(await sha256(token));
}

function fingerprintOf(digest: ArrayBuffer): string {
	return Array.from(new Uint8Array(digest).subarray(0, 4), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function sha256(text: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", encoder.encode(text));
}
