import { parseArgs } from "node:util";

/** A mistake in how the command was called: printed with the usage, exit code 2. */
export class UsageError extends Error {}

/** The command line, parsed: the command, its positional arguments and the options. */
export interface Invocation {
	command: string;
	args: string[];
	url: string;
	passphrase: string;
	space?: string;
	spaceName?: string;
	piece?: string;
	integration?: string;
	limit?: string;
	cursor?: string;
	all: boolean;
	/** import: decide every row, write nothing. */
	dryRun: boolean;
	/** export: the file to write instead of printing. */
	out?: string;
	/** Print the Worker's answers as JSON, for scripts, instead of tables and sentences. */
	json: boolean;
	help: boolean;
}

/** The Worker the CLI talks to unless --url, BG_URL or PORT says otherwise (`npm start`'s address). */
export const DEFAULT_URL = "http://localhost:8787";

/** The Worker's URL from the environment: BG_URL, else `npm start`'s on PORT, else the default. */
export function urlFromEnvironment(env: Record<string, string | undefined> = process.env): string {
	if (env.BG_URL) return env.BG_URL;
	return env.PORT ? `http://localhost:${env.PORT}` : DEFAULT_URL;
}

/** The passphrase Common Fabric derives space DIDs from. */
export const DEFAULT_SPACE_PASSPHRASE = "common user";

/** Parses argv (without `node` and the script). */
export function parseInvocation(argv: string[]): Invocation {
	let parsed;
	try {
		parsed = parseArgs({
			args: argv,
			allowPositionals: true,
			options: {
				url: { type: "string" },
				passphrase: { type: "string" },
				space: { type: "string" },
				"space-name": { type: "string" },
				piece: { type: "string" },
				integration: { type: "string" },
				limit: { type: "string" },
				cursor: { type: "string" },
				all: { type: "boolean", default: false },
				"dry-run": { type: "boolean", default: false },
				out: { type: "string" },
				json: { type: "boolean", default: false },
				help: { type: "boolean", short: "h", default: false },
			},
		});
	} catch (error) {
		throw new UsageError((error as Error).message);
	}
	const { values, positionals } = parsed;
	// No command at all is a wrong call (exit 2), not a request for help.
	const [command = "", ...args] = positionals;
	const given = values.url ?? urlFromEnvironment();
	const url = URL.parse(given);
	if (!url || !/^https?:$/.test(url.protocol)) throw new UsageError(`${values.url === undefined ? "BG_URL" : "--url"} must be an http(s) URL, not "${given}"`);
	return {
		command,
		args,
		url: url.href.replace(/\/+$/, ""),
		passphrase: values.passphrase ?? DEFAULT_SPACE_PASSPHRASE,
		space: values.space,
		spaceName: values["space-name"],
		piece: values.piece,
		integration: values.integration,
		limit: values.limit,
		cursor: values.cursor,
		all: values.all ?? false,
		dryRun: values["dry-run"] ?? false,
		out: values.out,
		json: values.json ?? false,
		help: values.help ?? false,
	};
}

/** What `npm run cli -- help` prints. */
export const USAGE = `Usage: npm run cli -- <command> [arguments] [options]

Commands:
  space-did <name> [--passphrase P]      the DID of a space name, as Common Fabric derives it
  register --piece <id> --integration <name> (--space <did> | --space-name <name> [--passphrase P])
                                         register a piece (token: REGISTRATION_TOKEN, if the
                                         Worker requires one)
  status <space> <pieceId>               a piece's entry
  list [--space <did>] [--limit N] [--cursor C] [--all]
                                         list pieces (admin); --all follows every page
  enable <space> <pieceId>               enable a piece (admin)
  disable <space> <pieceId>              disable a piece (admin)
  delete <space> <pieceId>               delete a piece (admin)
  run <space> <pieceId>                  run a piece now (admin)
  export [--out FILE]                    every piece as one JSON array: the replaced service's
                                         entry fields, then ours (admin)
  import FILE|- [--dry-run]              upsert every row of such an array (admin); a row newer
                                         in the Worker is kept, bad rows are refused one by one
                                         (row numbers are array indexes, from 0); --dry-run
                                         writes nothing and prints the same counts
  doctor                                 check a deployment end to end: health, identity, the
                                         runtime, a recent tick, the admin token (ADMIN_TOKEN)
  service-did                            the DID the Worker signs as, from IDENTITY or
                                         OPERATOR_PASS here (before the first deploy, for the
                                         runtime's allow-list)
  help                                   this text

Options:
  --url <url>          the scheduler Worker, with its BASE_PATH if any (default: BG_URL, else
                       http://localhost:$PORT, else ${DEFAULT_URL})
  --json               the Worker's answers as JSON, for scripts (default: tables, relative times)
  --passphrase <p>     what space DIDs derive from (default "${DEFAULT_SPACE_PASSPHRASE}")

Environment:
  BG_URL               the scheduler Worker, as --url
  ADMIN_TOKEN          bearer token for admin commands
  CF_ACCESS_CLIENT_ID, CF_ACCESS_CLIENT_SECRET
                       a Cloudflare Access service token, sent with every request (where
                       Access guards the Worker); admin commands then need no ADMIN_TOKEN
  REGISTRATION_TOKEN   bearer token for register, where the Worker requires one
  IDENTITY, OPERATOR_PASS
                       the Worker's secrets, for service-did

Exit codes: 0 done; 1 the Worker refused or failed (its error is printed), import refused a
row, or doctor found a problem; 2 wrong usage; 3 the Worker could not be reached.`;
