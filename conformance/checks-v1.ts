import { probeVerdict } from "../src/policy/outcome";
import { HEADERS, probeBody, type RunRequestBody } from "../src/runtime/protocol";
import { accepted, describe, fail, pass, refused, type Check, type Verdict } from "./check";
import { bytesOf, foreignIdentity, runBody, send, sendSigned, sign, type Exchange, type Kit } from "./kit";

/** How far off the clock the stale and future requests are: twice the default skew window. */
const SKEWED_MS = 10 * 60_000;

/** A check that some malformed or untrusted request is refused (401, protocol header, {error}). */
function refusal(name: string, what: string, exchange: (kit: Kit) => Promise<Exchange>): Check {
	return { name, what, run: async (kit) => refused(await exchange(kit)) };
}

/** Signs a fresh run body, then lets `alter` change the headers before it is sent. */
async function sendAltered(kit: Kit, alter: (headers: Record<string, string>) => Record<string, string>): Promise<Exchange> {
	const bytes = bytesOf(runBody(kit));
	return send(kit, bytes, alter(await sign(kit, bytes)));
}

/** Sends a first request, which must be accepted, then a second one; judges the second's answer. */
async function twice(kit: Kit, first: () => Promise<Exchange>, again: () => Promise<Exchange>, judge: (second: Exchange) => Verdict): Promise<Verdict> {
	const one = accepted(await first());
	if (!one.pass) return fail(`the first request was not accepted: ${one.why}`);
	return judge(await again());
}

/**
 * Version 1 of the runtime protocol (docs/runtime-protocol.md), one entry per behaviour, in
 * the order they are run. Every request names the kit's piece and a fresh runId, so the
 * checks do not interfere with one another.
 */
export const V1_CHECKS: readonly Check[] = [
	{
		name: "signed-run",
		what: "a valid signed run gets a protocol answer (ok, or failed for a piece the runtime does not know)",
		run: async (kit) => {
			const exchange = await sendSigned(kit, runBody(kit));
			const verdict = accepted(exchange);
			// Every other check reads less without this one: say the likely cause.
			if (!verdict.pass && exchange.answered && exchange.status === 401) return fail(`${verdict.why}; does the runtime allow the signer above?`);
			return verdict;
		},
	},
	{
		name: "probe",
		what: 'a liveness probe gets a protocol answer of class ok or failed within the timeout (ideally 200 {"ok":true,"probe":true})',
		run: async (kit) => {
			const exchange = await sendSigned(kit, probeBody(kit.identity.did, Date.now()));
			if (!exchange.answered) return fail(exchange.why);
			const verdict = probeVerdict(exchange.outcome);
			if (!verdict.alive) return fail(verdict.reason);
			const asProbe = exchange.outcome.kind === "ok" && /"probe"\s*:\s*true/.test(exchange.body);
			return pass(asProbe ? `${describe(exchange)}, answered as a probe` : `${describe(exchange)}; a runtime SHOULD answer a probe at once with 200 {"ok":true,"probe":true}`);
		},
	},
	refusal("unsigned", "a request without bg-signer, bg-timestamp and bg-signature is refused", (kit) =>
		sendAltered(kit, (headers) => {
			const { [HEADERS.signer]: _signer, [HEADERS.timestamp]: _timestamp, [HEADERS.signature]: _signature, ...rest } = headers;
			return rest;
		}),
	),
	refusal("tampered-body", "a signed request whose body was changed afterwards is refused", async (kit) => {
		const body = runBody(kit);
		const signed = await sign(kit, bytesOf(body));
		// One character of the runId changed after signing: still valid JSON, same length.
		const last = body.runId.at(-1) === "0" ? "1" : "0";
		return send(kit, bytesOf({ ...body, runId: body.runId.slice(0, -1) + last }), signed);
	}),
	refusal("stale-timestamp", "a request signed 10 minutes ago is refused", async (kit) => {
		const bytes = bytesOf(runBody(kit));
		return send(kit, bytes, await sign(kit, bytes, { at: Date.now() - SKEWED_MS }));
	}),
	refusal("future-timestamp", "a request signed 10 minutes ahead is refused", async (kit) => {
		const bytes = bytesOf(runBody(kit));
		return send(kit, bytes, await sign(kit, bytes, { at: Date.now() + SKEWED_MS }));
	}),
	refusal("foreign-signer", "a validly signed request from a key the runtime does not allow is refused", async (kit) => {
		const bytes = bytesOf(runBody(kit));
		return send(kit, bytes, await sign(kit, bytes, { signer: await foreignIdentity() }));
	}),
	// Version 0 is no version: whatever later versions a runtime speaks, it must refuse this one.
	refusal("wrong-version", "a signed request with a protocol version the runtime does not speak is refused", (kit) => sendAltered(kit, (headers) => ({ ...headers, [HEADERS.version]: "0" }))),
	{
		name: "replay",
		what: 'the exact same request sent a second time is refused with 401 {"error":"replayed runId"}',
		run: async (kit) => {
			const bytes = bytesOf(runBody(kit));
			const headers = await sign(kit, bytes);
			return twice(kit, () => send(kit, bytes, headers), () => send(kit, bytes, headers), (second) =>
				second.answered && second.outcome.kind === "replayed" ? pass("second copy: 401 replayed runId") : fail(`the second copy was answered ${describe(second)}, not refused with 401 {"error":"replayed runId"}`),
			);
		},
	},
	{
		name: "redelivery",
		what: "the same runId again with attempt 2, freshly signed, is run, not refused as a replay",
		run: async (kit) => {
			const first: RunRequestBody = runBody(kit);
			return twice(kit, () => sendSigned(kit, first), () => sendSigned(kit, { ...first, attempt: 2 }), (second) => {
				if (second.answered && second.outcome.kind === "replayed") return fail("attempt 2 was refused as a replay: the replay key is <runId>#<attempt>, so a redelivery must pass");
				const verdict = accepted(second);
				return verdict.pass ? pass(`attempt 2: ${verdict.note}`) : fail(`attempt 2: ${verdict.why}`);
			});
		},
	},
];
