import type { IRequest } from "itty-router";
import { adminTokens, matchAdminToken } from "./admin-tokens";
import { ACCESS_HEADER, accessAdmin, accessConfig, type CloudflareAccessEnv } from "./cloudflare-access";
import { StatusError } from "./errors";

/**
 * Who an admin request comes from: a person or a service token Cloudflare Access vouched for,
 * or a holder of one of the admin tokens, known by its fingerprint (never the token).
 */
export type Admin = { via: "access"; email: string } | { via: "access-service-token"; clientId: string } | { via: "token"; fingerprint: string };

/** The bindings that say who is an admin. */
export type AdminEnv = Pick<Env, "ADMIN_TOKEN"> & CloudflareAccessEnv;

/** A request `requireAdmin` let through, carrying who made it. */
export type AdminRequest = IRequest & { admin: Admin };

/**
 * The one place that decides who is an admin: answers who, or throws. A request is an admin's
 * if its `Authorization: Bearer` is one of ADMIN_TOKEN's tokens (src/api/admin-tokens.ts), or
 * its `Cf-Access-Jwt-Assertion` is a valid Cloudflare Access JWT of someone on ACCESS_ADMINS
 * (src/api/cloudflare-access.ts); either suffices. With neither configured every request is
 * refused (503): admin never falls open, and a half-configured Access admits no one.
 */
export async function authenticateAdmin(request: Request, env: AdminEnv): Promise<Admin> {
	const tokens = adminTokens(env);
	const access = accessConfig(env);
	if (!tokens.length && access.kind !== "on") {
		throw new StatusError(503, access.kind === "problem" ? `admin API disabled: ${access.problem}` : "admin API disabled: set the ADMIN_TOKEN secret, or Cloudflare Access (ACCESS_TEAM_DOMAIN, ACCESS_AUD, ACCESS_ADMINS)");
	}
	const token = bearerToken(request);
	if (token && tokens.length) {
		const fingerprint = await matchAdminToken(token, tokens);
		if (fingerprint) return { via: "token", fingerprint };
	}
	const assertion = request.headers.get(ACCESS_HEADER);
	if (assertion && access.kind === "problem") throw new StatusError(503, access.problem);
	if (assertion && access.kind === "on") {
		const identity = await accessAdmin(assertion, access);
		return "email" in identity ? { via: "access", email: identity.email } : { via: "access-service-token", clientId: identity.clientId };
	}
	if (!tokens.length) throw new StatusError(401, "sign in with Cloudflare Access (no Cf-Access-Jwt-Assertion came with the request); this Worker has no ADMIN_TOKEN");
	throw new StatusError(401, `missing or wrong admin token (Authorization: Bearer <ADMIN_TOKEN>)${access.kind === "on" ? ", and no Cloudflare Access sign-in" : ""}`);
}

/**
 * The admin routes' guard (itty-router middleware): refuses (401, 403, 503) or lets the
 * request through with who made it (`adminOf`), so handlers never read credentials.
 */
export async function requireAdmin(request: IRequest, env: AdminEnv): Promise<void> {
	(request as AdminRequest).admin = await authenticateAdmin(request, env);
}

/** Who made an admin request; only for requests `requireAdmin` let through. */
export function adminOf(request: IRequest): Admin {
	const admin = (request as Partial<AdminRequest>).admin;
	if (!admin) throw new Error("an admin route without requireAdmin");
	return admin;
}

/** Who, as logs and history name them: `access:<email>`, `access-service-token:<client id>` or `token:<fingerprint>`. */
export function adminLabel(admin: Admin): string {
	switch (admin.via) {
		case "access":
			return `access:${admin.email}`;
		case "access-service-token":
			return `access-service-token:${admin.clientId}`;
		case "token":
			return `token:${admin.fingerprint}`;
	}
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(request: Request): string | undefined {
	return /^Bearer\s+(\S+)\s*$/i.exec(request.headers.get("authorization") ?? "")?.[1];
}
