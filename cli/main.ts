/**
 * The operators' and piece developers' command line: `npm run cli -- <command>`. It derives
 * space DIDs exactly as Common Fabric does and calls the scheduler Worker's HTTP routes.
 */
import { deriveIdentity, identityFromPassphrase } from "../src/identity/ed25519";
import { parseInvocation, USAGE, UsageError, type Invocation } from "./args";

/** The Worker could not be reached: exit code 3. */
class UnreachableError extends Error {}
/** The Worker answered with an error: exit code 1. */
class RefusedError extends Error {}

/** `Identity.fromPassphrase(passphrase).derive(name).did()`. */
export async function spaceDid(name: string, passphrase: string): Promise<string> {
	return (await deriveIdentity(await identityFromPassphrase(passphrase), name)).did;
}

async function call(invocation: Invocation, path: string, init: RequestInit & { token?: string } = {}): Promise<unknown> {
	const headers = new Headers(init.headers);
	if (init.token) headers.set("authorization", `Bearer ${init.token}`);
	if (init.body) headers.set("content-type", "application/json");
	let response: Response;
	try {
		response = await fetch(`${invocation.url}${path}`, { ...init, headers });
	} catch (error) {
		throw new UnreachableError(`cannot reach ${invocation.url}: ${(error as Error).cause ?? (error as Error).message}`);
	}
	const text = await response.text();
	let body: unknown = text;
	try {
		body = JSON.parse(text);
	} catch {
		// Not JSON: shown as text.
	}
	if (!response.ok) {
		const error = body && typeof body === "object" && "error" in body ? (body as { error: unknown }).error : text;
		throw new RefusedError(`HTTP ${response.status}: ${String(error)}`);
	}
	return body;
}

function adminToken(): string {
	const token = process.env.ADMIN_TOKEN;
	if (!token) throw new UsageError("set ADMIN_TOKEN to the scheduler's admin token for this command");
	return token;
}

/** `<space> <pieceId>` of a per-piece command, URL-encoded for the path. */
function piecePath(invocation: Invocation): string {
	const [space, pieceId] = invocation.args;
	if (!space || !pieceId || invocation.args.length > 2) throw new UsageError(`${invocation.command} takes <space> <pieceId>`);
	return `/api/integrations/bg/${encodeURIComponent(space)}/${encodeURIComponent(pieceId)}`;
}

async function list(invocation: Invocation): Promise<unknown> {
	const pieces: unknown[] = [];
	let cursor = invocation.cursor;
	for (;;) {
		const query = new URLSearchParams();
		if (invocation.space) query.set("space", invocation.space);
		if (invocation.limit) query.set("limit", invocation.limit);
		if (cursor) query.set("cursor", cursor);
		const page = (await call(invocation, `/api/integrations/bg?${query}`, { token: adminToken() })) as { pieces: unknown[]; cursor: string | null };
		if (!invocation.all) return page;
		pieces.push(...page.pieces);
		if (!page.cursor) return { success: true, pieces, cursor: null, complete: true };
		cursor = page.cursor;
	}
}

async function register(invocation: Invocation): Promise<unknown> {
	if (!invocation.piece || !invocation.integration) throw new UsageError("register needs --piece and --integration");
	if (!!invocation.space === !!invocation.spaceName) throw new UsageError("register needs one of --space <did> or --space-name <name>");
	const space = invocation.space ?? (await spaceDid(invocation.spaceName!, invocation.passphrase));
	const token = process.env.REGISTRATION_TOKEN;
	return call(invocation, "/api/integrations/bg", { method: "POST", token, body: JSON.stringify({ space, pieceId: invocation.piece, integration: invocation.integration }) });
}

/** Runs one invocation; returns what to print. */
export async function run(invocation: Invocation): Promise<string> {
	switch (invocation.command) {
		case "help":
			return USAGE;
		case "space-did": {
			const [name, ...rest] = invocation.args;
			if (name === undefined || rest.length) throw new UsageError("space-did takes exactly one space name");
			return spaceDid(name, invocation.passphrase);
		}
		case "register":
			return show(await register(invocation));
		case "status":
			return show(await call(invocation, piecePath(invocation)));
		case "list":
			return show(await list(invocation));
		case "enable":
		case "disable":
			return show(await call(invocation, piecePath(invocation), { method: "PATCH", token: adminToken(), body: JSON.stringify({ enabled: invocation.command === "enable" }) }));
		case "delete":
			return show(await call(invocation, piecePath(invocation), { method: "DELETE", token: adminToken() }));
		case "run":
			return show(await call(invocation, `${piecePath(invocation)}/run`, { method: "POST", token: adminToken() }));
		default:
			throw new UsageError(`unknown command "${invocation.command}"`);
	}
}

function show(value: unknown): string {
	return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

/** Entry point: prints the result, or the error and the usage, and sets the exit code. */
export async function main(argv: string[]): Promise<number> {
	try {
		const invocation = parseInvocation(argv);
		console.log(await run(invocation.help ? { ...invocation, command: "help" } : invocation));
		return 0;
	} catch (error) {
		if (error instanceof UsageError) {
			console.error(`error: ${error.message}\n\n${USAGE}`);
			return 2;
		}
		console.error(`error: ${(error as Error).message}`);
		return error instanceof UnreachableError ? 3 : 1;
	}
}
