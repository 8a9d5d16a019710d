import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { base64urlnopad } from "@scure/base";
import { publicKeyFromDid } from "../src/identity/ed25519";
import { HEADERS, canonicalString, utf8, type SignedKind } from "../src/runtime/protocol";
import { MAX_V2_BODY_BYTES, PROTOCOL_V2, type ReportResult } from "../src/runtime/protocol-v2";
import { verifyReport, type ReportVerification } from "../src/runtime/verify";
import type { ReportListen } from "./args";

/** The path the kit's listener is reported to when no --report-url names another: the scheduler's. */
export const REPORT_PATH = "/api/runtime/reports";

/** One request that reached the listener, as it came, with what the kit made of it. */
export interface Received {
	at: number;
	method: string;
	/** The request's path, without any query. */
	path: string;
	version: string | null;
	headers: Headers;
	bytes: Uint8Array;
	/** verifyReport's verdict, or a refusal for a request that was not a POST to the reportTo path. */
	verification: ReportVerification;
	/** The reports in the body, read even when the request was refused, so a refused report of a run can be named. */
	reports: unknown[];
}

/** The kit's stand-in for the scheduler's report endpoint (`POST /api/runtime/reports`). */
export interface ReportInbox {
	/** The URL dispatches name as `reportTo`. */
	reportTo: URL;
	/** Where the listener is bound, host:port. */
	listening: string;
	/** The did:key reports must be signed by, or null for any valid signer. */
	signer: string | null;
	/** Every request received so far, in order. */
	received: readonly Received[];
	/** The first request with a report that `match`es, waiting up to `ms` for it; null if none came. */
	waitFor(match: (report: unknown) => boolean, ms: number): Promise<Received | null>;
	close(): Promise<void>;
}

/** A report's runId, if it has a string one. */
export function runIdOf(report: unknown): string | null {
	const runId = (report as { runId?: unknown } | null)?.runId;
	return typeof runId === "string" ? runId : null;
}

/** A report's ticket, if it has a string one. */
export function ticketOf(report: unknown): string | null {
	const ticket = (report as { ticket?: unknown } | null)?.ticket;
	return typeof ticket === "string" ? ticket : null;
}

/** Every kind of signed message, so a signature made for the wrong one can be named. */
const KINDS: readonly SignedKind[] = ["bg-report-v2", "bg-run-v2", "bg-run-v1"];

/**
 * Which canonical string a received request's signature is over, or null for none: tells a
 * runtime that signs its reports with a dispatch's label from one whose signature is simply bad.
 */
export async function signedKindOf(request: Received): Promise<SignedKind | null> {
	const publicKey = publicKeyFromDid(request.headers.get(HEADERS.signer) ?? "");
	const timestamp = request.headers.get(HEADERS.timestamp);
	let signature: Uint8Array;
	try {
		signature = base64urlnopad.decode(request.headers.get(HEADERS.signature) ?? "");
	} catch {
		return null;
	}
	if (!publicKey || timestamp === null) return null;
	try {
		const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
		for (const kind of KINDS) {
			const canonical = await canonicalString(request.method, request.path, timestamp, request.bytes, kind);
			if (await crypto.subtle.verify("Ed25519", key, signature, utf8(canonical))) return kind;
		}
	} catch {
		// A key that is no curve point: no kind verifies.
	}
	return null;
}

/**
 * Starts the report listener on `listen`. Runtimes are told to report to `reportUrl`, or to
 * the listener itself (`http://<host>:<port>/api/runtime/reports`). It answers like the
 * scheduler: 401 `{error}` for what verifyReport refuses, else 200 with one result per
 * report, every answer with `bg-protocol: 2`.
 */
export async function startReportInbox(listen: ReportListen, reportUrl: URL | null, signer: string | null): Promise<ReportInbox> {
	const received: Received[] = [];
	const waiters = new Set<{ match: (report: unknown) => boolean; resolve: (request: Received | null) => void }>();
	// The scheduler's replay memory for reports: a request's signature is its replay key.
	const signatures = new Set<string>();
	const seenBefore = (key: string): boolean => {
		if (signatures.has(key)) return true;
		signatures.add(key);
		return false;
	};
	// Completed with the port once listening, before any request can arrive.
	let reportTo: URL = reportUrl ?? new URL(REPORT_PATH, "http://127.0.0.1/");

	const server = createServer((incoming, outgoing) => {
		handle(incoming, outgoing).catch((error) => {
			if (!outgoing.headersSent) outgoing.writeHead(500, { "content-type": "application/json", [HEADERS.version]: PROTOCOL_V2 });
			outgoing.end(JSON.stringify({ error: `the kit's report listener failed: ${String(error)}` }));
		});
	});

	async function handle(incoming: IncomingMessage, outgoing: ServerResponse): Promise<void> {
		const bytes = await readBody(incoming);
		const path = (incoming.url ?? "/").replace(/\?.*$/, "");
		const headers = new Headers();
		for (let i = 0; i < incoming.rawHeaders.length; i += 2) headers.append(incoming.rawHeaders[i]!, incoming.rawHeaders[i + 1]!);
		const misrouted = incoming.method !== "POST" || path !== reportTo.pathname;
		let verification: ReportVerification;
		if (misrouted) {
			verification = { ok: false, status: 401, error: `not a POST to ${reportTo.pathname}` };
		} else {
			// The URL as the runtime was given it, with the path that arrived: the signature covers the path.
			const request = new Request(new URL(incoming.url ?? "/", reportTo), { method: "POST", headers, body: bytes });
			verification = await verifyReport(request, { allowedSigners: signer ? [signer] : [], allowAnySigner: signer === null, seenBefore });
		}
		const request: Received = { at: Date.now(), method: incoming.method ?? "", path, version: headers.get(HEADERS.version), headers, bytes, verification, reports: reportsIn(bytes) };
		received.push(request);
		const answer = verification.ok ? { results: verification.body.reports.map(resultOf) } : { error: verification.error };
		outgoing.writeHead(misrouted ? 404 : verification.ok ? 200 : 401, { "content-type": "application/json", [HEADERS.version]: PROTOCOL_V2 });
		outgoing.end(JSON.stringify(answer));
		for (const waiter of waiters) if (request.reports.some(waiter.match)) waiter.resolve(request);
	}

	await new Promise<void>((resolve, reject) => {
		server.once("error", reject);
		server.listen(listen.port, listen.host, () => resolve());
	});
	const { address, port } = server.address() as AddressInfo;
	const listening = address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
	// An unspecified address (0.0.0.0, ::) is reached on this machine as loopback.
	if (!reportUrl) reportTo = new URL(REPORT_PATH, `http://${/^(0\.0\.0\.0|::)$/.test(address) ? "127.0.0.1" : listening}/`);

	return {
		reportTo,
		listening,
		signer,
		received,
		waitFor(match, ms) {
			const earlier = received.find((request) => request.reports.some(match));
			if (earlier) return Promise.resolve(earlier);
			return new Promise((resolve) => {
				const waiter = {
					match,
					resolve: (request: Received | null): void => {
						clearTimeout(timer);
						waiters.delete(waiter);
						resolve(request);
					},
				};
				const timer = setTimeout(() => waiter.resolve(null), ms);
				waiters.add(waiter);
			});
		},
		close() {
			for (const waiter of waiters) waiter.resolve(null);
			// Connections a runtime keeps alive would hold close() open.
			server.closeAllConnections();
			return new Promise((resolve) => server.close(() => resolve()));
		},
	};
}

/** What the kit answers for one verified report: what the scheduler would, bar its ticket and KV checks. */
function resultOf(report: unknown): ReportResult {
	const outcome = (report as { outcome?: unknown } | null)?.outcome;
	return { runId: runIdOf(report) ?? "", status: outcome === "ok" || outcome === "failed" ? "recorded" : "invalid" };
}

/** The body's reports, leniently: [] when it is not JSON with a reports list. */
function reportsIn(bytes: Uint8Array): unknown[] {
	try {
		const reports = (JSON.parse(new TextDecoder().decode(bytes)) as { reports?: unknown } | null)?.reports;
		return Array.isArray(reports) ? reports : [];
	} catch {
		return [];
	}
}

/** The request body, up to one byte over the protocol's limit (so verifyReport sees it is too large) and no more. */
async function readBody(incoming: IncomingMessage): Promise<Uint8Array> {
	const chunks: Buffer[] = [];
	let size = 0;
	for await (const chunk of incoming as AsyncIterable<Buffer>) {
		if (size > MAX_V2_BODY_BYTES) continue;
		chunks.push(chunk);
		size += chunk.length;
	}
	return new Uint8Array(Buffer.concat(chunks));
}
