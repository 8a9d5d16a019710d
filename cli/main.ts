/**
 * The operators' and piece developers' command line: `npm run cli -- <command>`. It derives
 * space DIDs exactly as Common Fabric does and calls the scheduler Worker's HTTP routes.
 */
import { readFile, writeFile } from "node:fs/promises";
import { text } from "node:stream/consumers";
import { deriveIdentity, identityFromPassphrase } from "../src/identity/ed25519";
import { parseInvocation, USAGE, UsageError, type Invocation } from "./args";
import { exportRegistry, formatExport, importRegistry, type ImportReport, type Transport } from "./transfer";

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

/** The transport of export and import: the Worker's admin routes over HTTP. */
function adminTransport(invocation: Invocation): Transport {
	const token = adminToken();
	return async (path, init = {}) => {
		const headers = new Headers(init.headers);
		headers.set("authorization", `Bearer ${token}`);
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

/** Runs one invocation; returns what to print (and, for import, the exit code). */
export async function run(invocation: Invocation): Promise<string | Printed> {
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
		case "export":
			return exportCommand(invocation);
		case "import":
			return importCommand(invocation);
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
		const result = await run(invocation.help ? { ...invocation, command: "help" } : invocation);
		const printed = typeof result === "string" ? { text: result, exitCode: 0 } : result;
		console.log(printed.text);
		return printed.exitCode;
	} catch (error) {
		if (error instanceof UsageError) {
			console.error(`error: ${error.message}\n\n${USAGE}`);
			return 2;
		}
		console.error(`error: ${(error as Error).message}`);
		return error instanceof UnreachableError ? 3 : 1;
	}
}
