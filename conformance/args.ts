import { parseArgs } from "node:util";
import type * as z from "zod/mini";
import { firstIssue, integrationSchema, pieceIdSchema, spaceSchema } from "../src/schema";

/** A mistake in how the kit was called: one line on stderr, exit code 2. */
export class UsageError extends Error {}

/** The command line, parsed and validated. Unset space and piece are made fresh by the kit. */
export interface Options {
	url: URL;
	space?: string;
	piece?: string;
	integration: string;
	timeoutMs: number;
	help: boolean;
}

/** The integration named in the test runs: the reference runtime's succeeding example. */
export const DEFAULT_INTEGRATION = "counter";

/** How long one request may take, status to last byte, unless --timeout-ms says otherwise. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Longest accepted --timeout-ms: the scheduler's own longest run timeout (12 minutes). */
const MAX_TIMEOUT_MS = 12 * 60_000;

/** Parses argv (without `node` and the script). */
export function parseOptions(argv: string[]): Options {
	let values;
	try {
		({ values } = parseArgs({
			args: argv,
			options: {
				url: { type: "string" },
				space: { type: "string" },
				piece: { type: "string" },
				integration: { type: "string" },
				"timeout-ms": { type: "string" },
				help: { type: "boolean", short: "h", default: false },
			},
		}));
	} catch (error) {
		throw new UsageError((error as Error).message);
	}
	if (values.help) return { url: new URL("http://localhost/"), integration: DEFAULT_INTEGRATION, timeoutMs: DEFAULT_TIMEOUT_MS, help: true };
	if (values.url === undefined) throw new UsageError("--url is required: the runtime's run endpoint, e.g. http://127.0.0.1:8788/v1/run");
	const url = URL.parse(values.url);
	if (!url || !/^https?:$/.test(url.protocol)) throw new UsageError(`--url must be an http(s) URL, not "${values.url}"`);
	return {
		url,
		// The same rules the scheduler applies to a registration, so the requests are ones it could send.
		space: values.space === undefined ? undefined : valid(spaceSchema, values.space, "--space"),
		piece: values.piece === undefined ? undefined : valid(pieceIdSchema, values.piece, "--piece"),
		integration: values.integration === undefined ? DEFAULT_INTEGRATION : valid(integrationSchema, values.integration, "--integration"),
		timeoutMs: values["timeout-ms"] === undefined ? DEFAULT_TIMEOUT_MS : timeout(values["timeout-ms"]),
		help: false,
	};
}

function valid(schema: z.ZodMiniType<string, string>, value: string, option: string): string {
	const result = schema.safeParse(value);
	if (result.success) return result.data;
	throw new UsageError(`${option}: ${firstIssue(result.error)}`);
}

function timeout(text: string): number {
	const ms = Number(text);
	if (!/^\d+$/.test(text) || ms < 1 || ms > MAX_TIMEOUT_MS) throw new UsageError(`--timeout-ms must be a whole number of milliseconds from 1 to ${MAX_TIMEOUT_MS}, not "${text}"`);
	return ms;
}

/** What `npm run conformance -- --help` prints. */
export const USAGE = `Usage: npm run conformance -- --url <run endpoint URL> [options]

Sends signed run requests to a piece runtime, as the scheduler would, and checks that it
follows the runtime protocol: answers, refusals, replay protection, redelivery.

Options:
  --url <url>            the runtime's run endpoint, e.g. https://runtime.example/v1/run (required)
  --space <did>          the space named in test runs (default: a fresh did:key)
  --piece <id>           the piece id named in test runs (default: a fresh fid1: id)
  --integration <name>   the integration named in test runs (default "${DEFAULT_INTEGRATION}")
  --timeout-ms <ms>      how long one request may take (default ${DEFAULT_TIMEOUT_MS})

Environment (the signer, as the scheduler chooses it):
  IDENTITY               a PKCS#8 Ed25519 key, PEM or base64
  OPERATOR_PASS          else the key of this passphrase
                         else the default passphrase "implicit trust" (development only)

Exit codes: 0 every check passed; 1 a check failed; 2 wrong usage or an unusable IDENTITY.`;
