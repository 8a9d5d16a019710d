/**
 * The runtime conformance kit: `npm run conformance -- --url <run endpoint>`. It sends signed
 * run requests to a piece runtime exactly as the scheduler does, with the scheduler's identity
 * settings and signing code, and checks the runtime's answers against the runtime protocol
 * (docs/runtime-protocol.md). One line per check, then "N passed, N failed".
 */
import { serviceIdentity } from "../src/identity/service";
import { describe as describeError } from "../src/log";
import { PROTOCOL_VERSION } from "../src/runtime/protocol";
import { parseOptions, USAGE, UsageError, type Options } from "./args";
import type { Check, Verdict } from "./check";
import { freshPiece, freshSpace, type Kit } from "./kit";
import { suiteFor } from "./suites";

/** Where the signer comes from, in the scheduler's order of precedence. */
function signerSource(env: NodeJS.ProcessEnv): string {
	if (env.IDENTITY) return "IDENTITY";
	if (env.OPERATOR_PASS) return "OPERATOR_PASS";
	return 'the default passphrase "implicit trust": development only';
}

/** Runs one check; a check that throws is a failure of that check, not of the run. */
async function verdictOf(check: Check, kit: Kit): Promise<Verdict> {
	try {
		return await check.run(kit);
	} catch (error) {
		return { pass: false, why: `the check could not run: ${describeError(error)}` };
	}
}

async function kitOf(options: Options): Promise<Kit> {
	let identity;
	try {
		identity = await serviceIdentity({ IDENTITY: process.env.IDENTITY, OPERATOR_PASS: process.env.OPERATOR_PASS });
	} catch (error) {
		throw new UsageError(`IDENTITY is not a PKCS#8 Ed25519 key (PEM or base64): ${describeError(error)}`);
	}
	return { url: options.url, identity, space: options.space ?? (await freshSpace()), piece: options.piece ?? freshPiece(), integration: options.integration, timeoutMs: options.timeoutMs };
}

/** Entry point: runs the checks, prints one line each and the totals; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
	let kit: Kit;
	try {
		const options = parseOptions(argv);
		if (options.help) {
			console.log(USAGE);
			return 0;
		}
		kit = await kitOf(options);
	} catch (error) {
		if (!(error instanceof UsageError)) throw error;
		console.error(`error: ${error.message} (npm run conformance -- --help)`);
		return 2;
	}
	// The version the scheduler speaks; a kit for a later version picks that version's suite here.
	const checks = suiteFor(PROTOCOL_VERSION)!;
	console.log(`runtime protocol ${PROTOCOL_VERSION} conformance of ${kit.url.href}`);
	console.log(`signer ${kit.identity.did} (${signerSource(process.env)})`);
	console.log(`test piece: space ${kit.space}, piece ${kit.piece}, integration ${kit.integration}`);
	let passed = 0;
	let failed = 0;
	for (const check of checks) {
		const verdict = await verdictOf(check, kit);
		if (verdict.pass) passed++;
		else failed++;
		console.log(verdict.pass ? `PASS ${check.name} (${verdict.note})` : `FAIL ${check.name}: ${verdict.why}`);
	}
	console.log(`${passed} passed, ${failed} failed`);
	return failed === 0 ? 0 : 1;
}
