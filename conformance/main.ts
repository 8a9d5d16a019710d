/**
 * The runtime conformance kit: `npm run conformance -- --url <endpoint>`. It sends signed
 * requests to a piece runtime exactly as the scheduler does, with the scheduler's identity
 * settings and signing code, and checks the runtime's answers (and, in protocol 2, its
 * reports) against the runtime protocol (docs/runtime-protocol.md). It detects the version
 * the endpoint speaks unless --protocol says. One line per check, then "N passed, N failed".
 */
import { serviceIdentity } from "../src/identity/service";
import { describe as describeError } from "../src/log";
import { parseOptions, USAGE, UsageError, type Options } from "./args";
import type { Check, Verdict } from "./check";
import { detectProtocol, forced } from "./detect";
import { freshPiece, freshSpace, type Kit } from "./kit";
import { startReportInbox, type ReportInbox } from "./reports";
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
	return {
		url: options.url,
		identity,
		space: options.space ?? (await freshSpace()),
		piece: options.piece ?? freshPiece(),
		integration: options.integration,
		timeoutMs: options.timeoutMs,
		// Listening from the start, so even the detection probe names a reportTo that answers.
		reports: options.protocol === "1" ? null : await inboxOf(options),
		reportTimeoutMs: options.reportTimeoutMs,
	};
}

async function inboxOf(options: Options): Promise<ReportInbox> {
	try {
		return await startReportInbox(options.reportListen, options.reportUrl, options.runtimeSigner);
	} catch (error) {
		throw new UsageError(`cannot listen for reports on ${options.reportListen.host}:${options.reportListen.port}: ${describeError(error)}`);
	}
}

/** Where reports go and whose signature they need, in one line. */
function reportLine(inbox: ReportInbox): string {
	const whose = inbox.signer ? `signed by ${inbox.signer}` : "signed by any valid runtime signer (--runtime-signer requires one)";
	return `reports to ${inbox.reportTo.href} (the kit listens on ${inbox.listening}), ${whose}`;
}

/** Entry point: runs the checks, prints one line each and the totals; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
	let options: Options;
	let kit: Kit;
	try {
		options = parseOptions(argv);
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
	try {
		const detection = options.protocol ? forced(options.protocol) : await detectProtocol(kit);
		if (detection.version === "1" && kit.reports) {
			// Version 1 has no reports: nothing need listen.
			await kit.reports.close();
			kit = { ...kit, reports: null };
		}
		const checks = suiteFor(detection.version)!;
		console.log(`runtime protocol ${detection.version} conformance of ${kit.url.href}`);
		console.log(detection.why);
		console.log(`signer ${kit.identity.did} (${signerSource(process.env)})`);
		if (kit.reports) console.log(reportLine(kit.reports));
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
	} finally {
		await kit.reports?.close();
	}
}
