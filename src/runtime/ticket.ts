import { base64urlnopad } from "@scure/base";
import type { Identity } from "../identity/ed25519";
import { runMessageSchema, type RunMessage } from "../schema";
import { utf8 } from "./protocol";

/*
 * A v2 run's ticket: the run message the scheduler dispatched, sealed with an HMAC, which the
 * runtime hands back unchanged in its report. It proves that the scheduler dispatched that
 * run (a report for anything else changes nothing), and carries what recording needs (the
 * tick's snapshot of the piece), so a steady run's report reads no KV. No state is kept: the
 * key is derived from the service identity, and a ticket expires.
 */

/** What a ticket seals. */
interface Claims {
	/** The run message. */
	m: RunMessage;
	/** The delivery attempt it was dispatched as. */
	a: number;
	/** When it was dispatched (ms). */
	d: number;
	/** When it expires (ms): reports after it are late. */
	x: number;
}

/** A ticket read back: the run it was issued for, or why it is not accepted. */
export type TicketReading = { status: "valid"; message: RunMessage; attempt: number; dispatchedAt: number } | { status: "unknown" } | { status: "late" };

/** How long after a run's timeout its report is still accepted: the runtime's batching and retries. */
export const REPORT_GRACE_MS = 5 * 60_000;

const keys = new WeakMap<Identity, Promise<CryptoKey>>();

/**
 * The ticket key: SHA-256 of a label and the identity's signature of another. Ed25519 signatures
 * are deterministic, so every isolate derives the same secret from the same identity without
 * the private key ever leaving Web Crypto, and no extra secret needs configuring.
 */
function ticketKey(identity: Identity): Promise<CryptoKey> {
	let key = keys.get(identity);
	if (!key) {
		key = identity
			.sign(utf8("bg-ticket-key-v2"))
			// Prefixed before hashing, so the key is never the seed `derive("bg-ticket-key-v2")` makes.
			.then((signature) => crypto.subtle.digest("SHA-256", concat(utf8("bg-ticket-hmac\n"), signature)))
			.then((secret) => crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["sign", "verify"]));
		// A failed derivation must not stay cached: the next call tries again.
		key.catch(() => keys.delete(identity));
		keys.set(identity, key);
	}
	return key;
}

/** Seals a dispatched run into its ticket, valid until its timeout plus REPORT_GRACE_MS. */
export async function issueTicket(identity: Identity, message: RunMessage, attempt: number, now: number, timeoutMs: number): Promise<string> {
	const claims: Claims = { m: message, a: attempt, d: now, x: now + timeoutMs + REPORT_GRACE_MS };
	const payload = base64urlnopad.encode(utf8(JSON.stringify(claims)));
	const mac = new Uint8Array(await crypto.subtle.sign("HMAC", await ticketKey(identity), utf8(payload)));
	return `${payload}.${base64urlnopad.encode(mac)}`;
}

/** Reads a ticket: `unknown` unless this identity sealed it, `late` once it has expired. Never throws. */
export async function readTicket(identity: Identity, ticket: unknown, now: number): Promise<TicketReading> {
	if (typeof ticket !== "string" || ticket.length > 8192) return { status: "unknown" };
	const [payload, mac, extra] = ticket.split(".");
	if (!payload || !mac || extra !== undefined) return { status: "unknown" };
	try {
		if (!(await crypto.subtle.verify("HMAC", await ticketKey(identity), base64urlnopad.decode(mac), utf8(payload)))) return { status: "unknown" };
		const claims = JSON.parse(new TextDecoder().decode(base64urlnopad.decode(payload))) as Claims;
		const message = runMessageSchema.safeParse(claims.m);
		if (!message.success || !Number.isInteger(claims.a) || !Number.isFinite(claims.d) || !Number.isFinite(claims.x)) return { status: "unknown" };
		if (now > claims.x) return { status: "late" };
		return { status: "valid", message: message.data, attempt: claims.a, dispatchedAt: claims.d };
	} catch {
		return { status: "unknown" };
	}
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
	const out = new Uint8Array(a.length + b.length);
	out.set(a);
	out.set(b, a.length);
	return out;
}
