import { parseArgs } from "node:util";
import type * as z from "zod/mini";
import { publicKeyFromDid } from "../src/identity/ed25519";
import { firstIssue, integrationSchema, pieceIdSchema, spaceSchema } from "../src/schema";

/** A mistake in how the kit was called: one line on stderr, exit code 2. */
export class UsageError extends Error {}

/** Where the kit listens for a protocol 2 runtime's reports. */
export interface ReportListen {
	host: string;
	/** 0: any free port. */
	port: number;
}

/** The command line, parsed and validated. Unset space and piece are made fresh by the kit. */
export interface Options {
	url: URL;
	space?: string;
	piece?: string;
	integration: string;
	timeoutMs: number;
	/** The protocol version to check, or null to detect it. */
	protocol: "1" | "2" | null;
	/** The reportTo URL given to a remote runtime, or null for the kit's own listener's URL. */
	reportUrl: URL | null;
	reportListen: ReportListen;
	reportTimeoutMs: number;
	/** The did:key a report must be signed by, or null for any valid signer. */
	runtimeSigner: string | null;
	help: boolean;
}

/** The integration named in the test runs: the reference runtime's succeeding example. */
export const DEFAULT_INTEGRATION = "counter";

/** How long one request may take, status to last byte, unless --timeout-ms says otherwise. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** How long the `report` check waits for a run's report, unless --report-timeout-ms says otherwise. */
export const DEFAULT_REPORT_TIMEOUT_MS = 30_000;

/** Where the report listener binds by default: this machine only, any free port. */
export const DEFAULT_REPORT_LISTEN: ReportListen = { host: "127.0.0.1", port: 0 };

/** Longest accepted --timeout-ms: the scheduler's own longest run timeout (12 minutes). */
const MAX_TIMEOUT_MS = 12 * 60_000;

/** Longest accepted --report-timeout-ms: the longest run timeout plus the scheduler's 5 minutes of grace for a report. */
const MAX_REPORT_TIMEOUT_MS = 17 * 60_000;

const DEFAULTS = {
	integration: DEFAULT_INTEGRATION,
	timeoutMs: DEFAULT_TIMEOUT_MS,
	protocol: null,
	reportUrl: null,
	reportListen: DEFAULT_REPORT_LISTEN,
	reportTimeoutMs: DEFAULT_REPORT_TIMEOUT_MS,
	runtimeSigner: null,
} as const;

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
				protocol: { type: "string" },
				"report-url": { type: "string" },
				"report-listen": { type: "string" },
				"report-timeout-ms": { type: "string" },
				"runtime-signer": { type: "string" },
				help: { type: "boolean", short: "h", default: false },
			},
		}));
	} catch (error) {
		throw new UsageError((error as Error).message);
	}
	if (values.help) return { ...DEFAULTS, url: new URL("http://localhost/"), help: true };
	if (values.url === undefined) throw new UsageError("--url is required: the runtime's endpoint, e.g. http://127.0.0.1:8788/v2/runs or …/v1/run");
	const url = httpUrl(values.url, "--url");
	const protocol = values.protocol;
	if (protocol !== undefined && protocol !== "1" && protocol !== "2") throw new UsageError(`--protocol must be 1 or 2, not "${protocol}"`);
	// A remote runtime reaches the kit through an address only the user knows (a tunnel, a
	// proxy): the kit cannot guess where to listen for what arrives there.
	if (values["report-url"] !== undefined && values["report-listen"] === undefined) throw new UsageError("--report-url needs --report-listen <host:port>: where the kit listens for the requests sent to that URL");
	return {
		url,
		// The same rules the scheduler applies to a registration, so the requests are ones it could send.
		space: values.space === undefined ? undefined : valid(spaceSchema, values.space, "--space"),
		piece: values.piece === undefined ? undefined : valid(pieceIdSchema, values.piece, "--piece"),
		integration: values.integration === undefined ? DEFAULT_INTEGRATION : valid(integrationSchema, values.integration, "--integration"),
		timeoutMs: values["timeout-ms"] === undefined ? DEFAULT_TIMEOUT_MS : milliseconds(values["timeout-ms"], "--timeout-ms", MAX_TIMEOUT_MS),
		protocol: protocol ?? null,
		reportUrl: values["report-url"] === undefined ? null : httpUrl(values["report-url"], "--report-url"),
		reportListen: values["report-listen"] === undefined ? DEFAULT_REPORT_LISTEN : listenAddress(values["report-listen"]),
		reportTimeoutMs: values["report-timeout-ms"] === undefined ? DEFAULT_REPORT_TIMEOUT_MS : milliseconds(values["report-timeout-ms"], "--report-timeout-ms", MAX_REPORT_TIMEOUT_MS),
		runtimeSigner: values["runtime-signer"] === undefined ? null : signer(values["runtime-signer"]),
		help: false,
	};
}

function valid(schema: z.ZodMiniType<string, string>, value: string, option: string): string {
	const result = schema.safeParse(value);
	if (result.success) return result.data;
	throw new UsageError(`${option}: ${firstIssue(result.error)}`);
}

function httpUrl(text: string, option: string): URL {
	const url = URL.parse(text);
	if (!url || !/^https?:$/.test(url.protocol)) throw new UsageError(`${option} must be an http(s) URL, not "${text}"`);
	return url;
}

function milliseconds(text: string, option: string, max: number): number {
	const ms = Number(text);
	if (!/^\d+$/.test(text) || ms < 1 || ms > max) throw new UsageError(`${option} must be a whole number of milliseconds from 1 to ${max}, not "${text}"`);
	return ms;
}

/** `host:port` (an IPv6 host in brackets); port 0 picks a free one. */
function listenAddress(text: string): ReportListen {
	const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(text);
	const port = Number(match?.[2]);
	if (!match || port > 65535) throw new UsageError(`--report-listen must be host:port, e.g. 127.0.0.1:8789 (port 0 for any free one), not "${text}"`);
	return { host: match[1]!.replace(/^\[(.*)\]$/, "$1"), port };
}

function signer(text: string): string {
	if (!publicKeyFromDid(text)) throw new UsageError(`--runtime-signer must be an Ed25519 did:key (did:key:z6Mk…), not "${text}"`);
	return text;
}

/** What `npm run conformance -- --help` prints. */
export const USAGE = `Usage: npm run conformance -- --url <runtime endpoint URL> [options]

Sends signed requests to a piece runtime, as the scheduler would, and checks that it follows
the runtime protocol: answers, refusals, replay protection, redelivery and, in protocol 2,
acknowledgements and signed reports. The protocol is detected with a signed protocol 2 probe
dispatch: an answer with bg-protocol: 2 means version 2, anything else version 1.

Options:
  --url <url>                 the runtime's endpoint, e.g. https://runtime.example/v2/runs or …/v1/run (required)
  --protocol <1|2>            check this version instead of detecting it
  --space <did>               the space named in test runs (default: a fresh did:key)
  --piece <id>                the piece id named in test runs (default: a fresh fid1: id)
  --integration <name>        the integration named in test runs (default "${DEFAULT_INTEGRATION}")
  --timeout-ms <ms>           how long one request may take (default ${DEFAULT_TIMEOUT_MS})

Protocol 2 reports (the kit plays the scheduler's report endpoint):
  --report-listen <host:port> where the kit listens for reports (default ${DEFAULT_REPORT_LISTEN.host}, a free port)
  --report-url <url>          the reportTo sent to the runtime, for one that cannot reach the
                              listener directly (a tunnel or proxy to it); needs --report-listen
  --report-timeout-ms <ms>    how long to wait for a run's report (default ${DEFAULT_REPORT_TIMEOUT_MS})
  --runtime-signer <did>      the did:key reports must be signed by (default: any valid signer)

Environment (the signer, as the scheduler chooses it):
  IDENTITY                    a PKCS#8 Ed25519 key, PEM or base64
  OPERATOR_PASS               else the key of this passphrase
                              else the default passphrase "implicit trust" (development only)

Exit codes: 0 every check passed; 1 a check failed; 2 wrong usage, an unusable IDENTITY, or
a report listener that could not start.`;
