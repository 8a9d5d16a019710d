/**
 * The operators' and piece developers' command line: `npm run cli -- <command>`. It derives
 * space DIDs exactly as Common Fabric does and calls the scheduler Worker's HTTP routes.
 */
import { readFile, writeFile } from "node:fs/promises";
import { text } from "node:stream/consumers";
import { DEFAULT_OPERATOR_PASS, decodePkcs8, deriveIdentity, identityFromPassphrase, identityFromPkcs8 } from "../src/identity/ed25519";
import { parseInvocation, USAGE, UsageError, type Invocation } from "./args";
import { describeChecks, doctor } from "./doctor";
import { messageOf, pieceDetail, piecesTable, type ShownPiece } from "./present";
import { exportRegistry, formatExport, importRegistry, type ImportReport, type Transport } from "./transfer";

/** The Worker could not be reached: exit code 3. */
class UnreachableError extends Error {}
/** The Worker answered with an error: exit code 1. */
class RefusedError extends Error {
	constructor(
		message: string,
		readonly status: number,
	) {
		super(message);
	}
}

/** The DID the Worker signs as, from the same secrets it reads: IDENTITY (PKCS#8, PEM or base64), else OPERATOR_PASS. */
export async function serviceDid(env: Record<string, string | undefined> = process.env): Promise<{ did: string; from: string }> {
	if (env.IDENTITY) {
		try {
			return { did: (await identityFromPkcs8(decodePkcs8(env.IDENTITY))).did, from: "IDENTITY" };
		} catch {
			throw new UsageError("IDENTITY is not a PKCS#8 Ed25519 key (openssl genpkey -algorithm ed25519 makes one)");
		}
	}
	const from = env.OPERATOR_PASS ? "OPERATOR_PASS" : `the default passphrase "${DEFAULT_OPERATOR_PASS}": set IDENTITY or OPERATOR_PASS as you will for the Worker`;
	return { did: (await identityFromPassphrase(env.OPERATOR_PASS || DEFAULT_OPERATOR_PASS)).did, from };
}

/** `Identity.fromPassphrase(passphrase).derive(name).did()`. */
export async function spaceDid(name: string, passphrase: string): Promise<string> {
	return (await deriveIdentity(await identityFromPassphrase(passphrase), name)).did;
}

async function call(invocation: Invocation, path: string, init: RequestInit & { token?: string } = {}): Promise<unknown> {
	const headers = withServiceToken(init.headers);
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
		throw new RefusedError(`HTTP ${response.status}: ${String(error)}`, response.status);
	}
	return body;
}

/**
 * Headers with a Cloudflare Access service token's two, when CF_ACCESS_CLIENT_ID and
 * CF_ACCESS_CLIENT_SECRET are set: Access in front of the Worker checks them and passes the
 * request on as the service token's (docs/cloudflare-access.md), so no ADMIN_TOKEN is needed.
 */
function withServiceToken(init?: RequestInit["headers"]): Headers {
	const headers = new Headers(init);
	if (hasServiceToken()) {
		headers.set("cf-access-client-id", process.env.CF_ACCESS_CLIENT_ID!);
		headers.set("cf-access-client-secret", process.env.CF_ACCESS_CLIENT_SECRET!);
	}
	return headers;
}

function hasServiceToken(): boolean {
	return Boolean(process.env.CF_ACCESS_CLIENT_ID && process.env.CF_ACCESS_CLIENT_SECRET);
}

/** The transport of export and import: the Worker's admin routes over HTTP. */
function adminTransport(invocation: Invocation): Transport {
	const token = adminToken();
	return async (path, init = {}) => {
		const headers = withServiceToken(init.headers);
		if (token) headers.set("authorization", `Bearer ${token}`);
		try {
			return await fetch(`${invocation.url}${path}`, { ...init, headers });
		} catch (error) {
			throw new UnreachableError(`cannot reach ${invocation.url}: ${(error as Error).cause ?? (error as Error).message}`);
		}
	};
}

/** A command's output and the exit code it asks for. */
interface Printed {
	text: string;
	exitCode: number;
}

async function exportCommand(invocation: Invocation): Promise<string> {
	if (invocation.args.length) throw new UsageError("export takes no arguments (--out FILE writes a file)");
	const rows = await exportRegistry(adminTransport(invocation));
	const json = formatExport(rows);
	if (!invocation.out) return json.trimEnd();
	await writeFile(invocation.out, json);
	return `exported ${rows.length} ${rows.length === 1 ? "piece" : "pieces"} to ${invocation.out}`;
}

/** The rows of an import file (`-`: standard input): a JSON array, else a usage error. */
async function readRows(file: string): Promise<unknown[]> {
	let content: string;
	try {
		content = file === "-" ? await text(process.stdin) : await readFile(file, "utf8");
	} catch (error) {
		throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
	}
	let rows: unknown;
	try {
		rows = JSON.parse(content);
	} catch (error) {
		throw new UsageError(`${file} is not JSON (${(error as Error).message}); import takes a JSON array of registry entries`);
	}
	if (!Array.isArray(rows)) throw new UsageError(`${file} holds JSON but not an array; import takes a JSON array of registry entries`);
	return rows;
}

async function importCommand(invocation: Invocation): Promise<Printed> {
	const [file, ...rest] = invocation.args;
	if (file === undefined || rest.length) throw new UsageError("import takes one FILE: a JSON array of registry entries, or - for standard input");
	const rows = await readRows(file);
	const transport = adminTransport(invocation);
	const progress = process.stderr.isTTY ? (done: number, total: number) => process.stderr.write(`\r${done} of ${total} rows…${done === total ? "\n" : ""}`) : undefined;
	const report = await importRegistry(transport, rows, { dryRun: invocation.dryRun, progress });
	return { text: describeImport(report), exitCode: report.counts.refused || report.counts.retry ? 1 : 0 };
}

/** The import's report: each refusal, then the counts. */
export function describeImport(report: ImportReport): string {
	const lines: string[] = [];
	for (const { index, outcome, reason } of report.outcomes) {
		if (outcome === "refused") lines.push(`row ${index}: ${reason ?? "refused"}`);
		if (outcome === "retry") lines.push(`row ${index}: not written: ${reason ?? "KV refused the write for rate"}; run the import again`);
	}
	if (report.duplicatesMerged) lines.push(`duplicates merged: ${report.duplicatesMerged}`);
	const { created, updated, unchanged, refused, retry } = report.counts;
	const counts = `created ${created}, updated ${updated}, unchanged ${unchanged}, refused ${refused}${retry ? `, not written ${retry}` : ""}`;
	lines.push(report.dryRun ? `dry run, nothing written: ${counts}` : counts);
	return lines.join("\n");
}

function adminToken(): string | undefined {
	const token = process.env.ADMIN_TOKEN;
	if (!token && !hasServiceToken()) throw new UsageError("set ADMIN_TOKEN to the scheduler's admin token for this command (or CF_ACCESS_CLIENT_ID and CF_ACCESS_CLIENT_SECRET, a Cloudflare Access service token)");
	return token || undefined;
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

/** A command's answer as JSON (--json), or as `human` puts it for people. */
function present<T>(invocation: Invocation, answer: T, human: (answer: T) => string): string {
	return invocation.json ? JSON.stringify(answer, null, 2) : human(answer);
}

/** Runs one invocation; returns what to print (and, for import and doctor, the exit code). */
export async function run(invocation: Invocation): Promise<string | Printed> {
	switch (invocation.command) {
		case "help":
			return USAGE;
		case "":
			throw new UsageError("no command given");
		case "doctor": {
			const checks = await doctor(async (path, init = {}) => fetch(`${invocation.url}${path}`, { ...init, headers: withServiceToken(init.headers) }), invocation.url, process.env.ADMIN_TOKEN, Date.now(), hasServiceToken());
			return { text: invocation.json ? JSON.stringify(checks, null, 2) : describeChecks(checks), exitCode: checks.every((check) => check.ok) ? 0 : 1 };
		}
		case "service-did": {
			const { did, from } = await serviceDid();
			console.error(`(from ${from})`);
			return did;
		}
		case "space-did": {
			const [name, ...rest] = invocation.args;
			if (name === undefined || rest.length) throw new UsageError("space-did takes exactly one space name");
			return spaceDid(name, invocation.passphrase);
		}
		case "register":
			return present(invocation, await register(invocation), messageOf);
		case "status":
			return present(invocation, (await call(invocation, piecePath(invocation))) as ShownPiece, (piece) => pieceDetail(piece));
		case "list":
			return present(invocation, (await list(invocation)) as { pieces: ShownPiece[]; cursor: string | null }, (page) => piecesTable(page.pieces ?? [], page.cursor ? `more: --cursor ${page.cursor} (or --all)` : null));
		case "enable":
		case "disable":
			return present(invocation, await call(invocation, piecePath(invocation), { method: "PATCH", token: adminToken(), body: JSON.stringify({ enabled: invocation.command === "enable" }) }), messageOf);
		case "delete":
			return present(invocation, await call(invocation, piecePath(invocation), { method: "DELETE", token: adminToken() }), messageOf);
		case "run":
			return present(invocation, await call(invocation, `${piecePath(invocation)}/run`, { method: "POST", token: adminToken() }), messageOf);
		case "export":
			return exportCommand(invocation);
		case "import":
			return importCommand(invocation);
		default:
			throw new UsageError(`unknown command "${invocation.command}"`);
	}
}

/** What to try when the Worker refused: the few answers with one likely cause. */
function hintFor(error: RefusedError): string | null {
	if (error.status === 401) return "ADMIN_TOKEN must be the Worker's admin token";
	if (error.status === 503 && /ADMIN_TOKEN/.test(error.message)) return "the Worker has no ADMIN_TOKEN secret: npx wrangler secret put ADMIN_TOKEN";
	if (error.status === 404 && /no such route/.test(error.message)) return "is --url (or BG_URL) the scheduler, with its BASE_PATH if it has one?";
	return null;
}

/** Entry point: prints the result, or one line of error with a hint, and sets the exit code. */
export async function main(argv: string[]): Promise<number> {
	try {
		const invocation = parseInvocation(argv);
		const result = await run(invocation.help ? { ...invocation, command: "help" } : invocation);
		const printed = typeof result === "string" ? { text: result, exitCode: 0 } : result;
		console.log(printed.text);
		return printed.exitCode;
	} catch (error) {
		if (error instanceof UsageError) {
			console.error(`error: ${error.message}\n  (npm run cli -- help: every command and option)`);
			return 2;
		}
		console.error(`error: ${(error as Error).message}`);
		const hint = error instanceof RefusedError ? hintFor(error) : error instanceof UnreachableError ? "is the Worker running (npm start) or deployed? --url or BG_URL says where" : null;
		if (hint) console.error(`  hint: ${hint}`);
		return error instanceof UnreachableError ? 3 : 1;
	}
}
