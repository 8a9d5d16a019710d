import { StatusError } from "./errors";

const encoder = new TextEncoder();

/**
 * Admin routes need `Authorization: Bearer <ADMIN_TOKEN>`. Without a configured token they
 * refuse everything (503), never fall open. The comparison is in constant time over SHA-256
 * digests, so neither the token's content nor its length leaks through timing.
 */
export async function requireAdmin(request: Request, env: Pick<Env, "ADMIN_TOKEN">): Promise<void> {
	if (!env.ADMIN_TOKEN) throw new StatusError(503, "admin API disabled: set the ADMIN_TOKEN secret");
	const token = bearerToken(request);
	if (!token || !(await sameSecret(token, env.ADMIN_TOKEN))) {
		throw new StatusError(401, "missing or wrong admin token (Authorization: Bearer <ADMIN_TOKEN>)");
	}
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(request: Request): string | undefined {
	return /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "")?.[1];
}

/** Whether two secrets are equal, compared in constant time over their SHA-256 digests. */
export async function sameSecret(given: string, expected: string): Promise<boolean> {
	const [a, b] = await Promise.all([digest(given), digest(expected)]);
	return crypto.subtle.timingSafeEqual(a, b);
}

async function digest(text: string): Promise<ArrayBuffer> {
	return crypto.subtle.digest("SHA-256", encoder.encode(text));
}
