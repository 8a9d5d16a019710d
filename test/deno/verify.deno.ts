/**
 * The runtime verifier under Deno: src/runtime/verify.ts, loaded unchanged, accepts the worked
 * example of docs/runtime-protocol.md and a freshly signed request, and refuses a tampered
 * copy and a replay; and the protocol 2 side a runtime needs (verifyDispatch, a report signed
 * with signedHeaders and checked with verifyReport) runs there too. Prints one line per case
 * and exits non-zero if any case went wrong.
 * Run by test/node/deno-verify.test.ts with the deno binary from node_modules, offline.
 */
import { base64urlnopad } from "@scure/base";
import { identityFromPassphrase } from "../../src/identity/ed25519.ts";
import { HEADERS, PROTOCOL_VERSION, REPLAYED_ERROR, canonicalString, utf8 } from "../../src/runtime/protocol.ts";
import { signedHeaders } from "../../src/runtime/sign.ts";
import { verifyDispatch, verifyReport, verifyRunRequest } from "../../src/runtime/verify.ts";

/** What any of the verifiers answers, as far as these cases look. */
type Verification = { ok: true; signer: string } | { ok: false; error: string };

/** The worked example, byte for byte as the protocol page gives it. */
const EXAMPLE = {
	signer: "did:key:z6MksHnZGdHxNoCqcC3kPvBSo2goCzLSWheQ8LrVpAtQwgwW",
	timestamp: "1767225600412",
	signature: "itL-rPrRC91_GcoQfsN_29LwgcIQZ8tf_AzUpTqzTxDgutPctSgUgsUeoXRP7FppMqQyAXjhZnFHZenFgHSWDQ",
	body: '{"space":"did:key:z6MkeoRviB4XfoA4cNrRULmJhz1j55yGiFRNX9ojaoNDZrhS","pieceId":"fid1:2BHRvIyc7YPj5uB3hJWuW1ci6A8xoVMfRQo1C1ZwSNY","integration":"gmail","event":{},"runId":"tick:1767225600000:did:key:z6MkeoRviB4XfoA4cNrRULmJhz1j55yGiFRNX9ojaoNDZrhS/fid1:2BHRvIyc7YPj5uB3hJWuW1ci6A8xoVMfRQo1C1ZwSNY","scheduledTime":1767225600000,"attempt":1}',
};
const RUN_URL = "https://runtime.internal/v1/run";

/** A fresh replay memory, as a runtime keeps one. */
function replayMemory(): (key: string) => boolean {
	const seen = new Set<string>();
	return (key) => {
		if (seen.has(key)) return true;
		seen.add(key);
		return false;
	};
}

function request(body: string | Uint8Array, headers: Record<string, string>): Request {
	return new Request(RUN_URL, { method: "POST", headers: { "content-type": "application/json", [HEADERS.version]: PROTOCOL_VERSION, ...headers }, body });
}

function exampleRequest(body: string = EXAMPLE.body): Request {
	return request(body, { [HEADERS.signer]: EXAMPLE.signer, [HEADERS.timestamp]: EXAMPLE.timestamp, [HEADERS.signature]: EXAMPLE.signature });
}

let failures = 0;
/** Prints a case's result; `expected` is null for acceptance or the refusal's error text. */
function report(name: string, result: Verification, expected: string | null): void {
	const got = result.ok ? null : result.error;
	const good = got === expected;
	if (!good) failures++;
	console.log(`${good ? "PASS" : "FAIL"} ${name}: ${result.ok ? `accepted, signer ${result.signer}` : `refused (${result.error})`}`);
}

const exampleClock = Number(EXAMPLE.timestamp);
const allowExample = { allowedSigners: [EXAMPLE.signer], now: exampleClock };

// The worked example, with the clock at its timestamp; then the same bytes again (a replay).
const seenExample = replayMemory();
report("worked example", await verifyRunRequest(exampleRequest(), { ...allowExample, seenBefore: seenExample }), null);
report("worked example replayed", await verifyRunRequest(exampleRequest(), { ...allowExample, seenBefore: seenExample }), REPLAYED_ERROR);
// One byte of the body changed after signing: the digest no longer matches.
report("worked example tampered", await verifyRunRequest(exampleRequest(EXAMPLE.body.replace('"gmail"', '"gmaIl"')), { ...allowExample, seenBefore: replayMemory() }), "bad signature");
report("worked example outside the skew window", await verifyRunRequest(exampleRequest(), { ...allowExample, now: exampleClock + 300_001, seenBefore: replayMemory() }), "stale or future timestamp");

// A request signed here and now with the same identity, through the protocol's own canonical string.
const identity = await identityFromPassphrase("implicit trust");
const now = Date.now();
const body = utf8(JSON.stringify({ space: EXAMPLE.signer, pieceId: "fid1:2BHRvIyc7YPj5uB3hJWuW1ci6A8xoVMfRQo1C1ZwSNY", integration: "counter", event: {}, runId: `deno:${now}:${crypto.randomUUID()}`, scheduledTime: now - (now % 60_000), attempt: 1 }));
const timestamp = String(now);
const signature = base64urlnopad.encode(await identity.sign(utf8(await canonicalString("POST", "/v1/run", timestamp, body))));
const fresh = (bytes: Uint8Array) => request(bytes, { [HEADERS.signer]: identity.did, [HEADERS.timestamp]: timestamp, [HEADERS.signature]: signature });
const seenFresh = replayMemory();
const allowFresh = { allowedSigners: [identity.did] };
report("freshly signed", await verifyRunRequest(fresh(body), { ...allowFresh, seenBefore: seenFresh }), null);
report("freshly signed replayed", await verifyRunRequest(fresh(body), { ...allowFresh, seenBefore: seenFresh }), REPLAYED_ERROR);
const tampered = body.slice();
tampered[tampered.length - 2] = "2".charCodeAt(0); // attempt 1 → 2, without signing again
report("freshly signed tampered", await verifyRunRequest(fresh(tampered), { ...allowFresh, seenBefore: replayMemory() }), "bad signature");

// Protocol 2: a dispatch signed as the scheduler signs it, checked as a runtime checks it; the
// same bytes again are accepted with their run marked replayed; a v1 signature never passes.
const dispatchUrl = new URL("https://runtime.internal/v2/runs");
const run = { space: EXAMPLE.signer, pieceId: "fid1:2BHRvIyc7YPj5uB3hJWuW1ci6A8xoVMfRQo1C1ZwSNY", integration: "counter", event: {}, runId: `deno-v2:${now}`, scheduledTime: now - (now % 60_000), attempt: 1, ticket: "t" };
const dispatchBytes = utf8(JSON.stringify({ runs: [run], reportTo: "https://scheduler.example/api/runtime/reports", timeoutMs: 600_000 }));
const dispatchHeaders = await signedHeaders(identity, "POST", dispatchUrl, dispatchBytes, Date.now(), "2", "bg-run-v2");
const dispatchRequest = (headers: Record<string, string>) => new Request(dispatchUrl, { method: "POST", headers, body: dispatchBytes });
const seenDispatch = replayMemory();
const first = await verifyDispatch(dispatchRequest(dispatchHeaders), { ...allowFresh, seenBefore: seenDispatch });
report("v2 dispatch", first, null);
const again = await verifyDispatch(dispatchRequest(dispatchHeaders), { ...allowFresh, seenBefore: seenDispatch });
report("v2 dispatch replayed: its run is marked", again.ok && again.replayed.has(run.runId) ? again : { ok: false, error: "run not marked replayed" }, null);
const v1Signed = await signedHeaders(identity, "POST", dispatchUrl, dispatchBytes, Date.now(), "1", "bg-run-v1");
report("v2 dispatch with a v1 signature", await verifyDispatch(dispatchRequest({ ...v1Signed, [HEADERS.version]: "2" }), { ...allowFresh, seenBefore: replayMemory() }), "bad signature");

// A runtime's report, signed with its own key as a runtime signs it.
const runtimeKey = await identityFromPassphrase("a runtime");
const reportUrl = new URL("https://scheduler.example/api/runtime/reports");
const reportBytes = utf8(JSON.stringify({ reports: [{ ticket: "t", runId: run.runId, outcome: "ok", durationMs: 5 }] }));
const reportHeaders = await signedHeaders(runtimeKey, "POST", reportUrl, reportBytes, Date.now(), "2", "bg-report-v2");
const seenReport = replayMemory();
const reportRequest = () => new Request(reportUrl, { method: "POST", headers: reportHeaders, body: reportBytes });
report("v2 report", await verifyReport(reportRequest(), { allowedSigners: [runtimeKey.did], seenBefore: seenReport }), null);
report("v2 report replayed", await verifyReport(reportRequest(), { allowedSigners: [runtimeKey.did], seenBefore: seenReport }), "replayed report");

console.log(`deno ${Deno.version.deno}: ${failures === 0 ? "all cases as expected" : `${failures} case(s) wrong`}`);
if (failures > 0) Deno.exit(1);
