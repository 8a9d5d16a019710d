/**
 * BENCHMARK HARNESS ONLY: the steady pieces `npm run bench` seeds straight into KV (not
 * counted), as test/helpers.ts seedPiece does: the full entry as the value, its summary as
 * metadata, keys that look like real ones.
 */
import { registered } from "../src/policy/schedule";
import type { PieceEntry } from "../src/registry/entry";
import { pieceKey, shardOf } from "../src/registry/keys";
import { summarise } from "../src/registry/store";
import { forEachLimit } from "../src/util/limit";

/** The product's default HEARTBEAT_MINUTES: a steady piece records its lastRun once per this many runs. */
const HEARTBEAT_RUNS = 60;

function seedEntry(i: number, tickTime: number, seededAt: number): PieceEntry {
	const space = `did:key:z6Mk${base58Fixed(Math.floor(i / 100), 44)}`;
	const pieceId = `fid1:${base64urlFixed(i, 43)}`;
	const base = registered(null, { space, pieceId, integration: "bench" }, 1_000);
	// A steady piece, due at this tick. As in the steady state, one piece in 60 is at its lastRun
	// heartbeat (last recorded 61 minutes ago); the rest recorded theirs a moment ago.
	const heartbeatDue = i % HEARTBEAT_RUNS === 0;
	return {
		...base,
		status: "Success",
		lastRun: seededAt - (heartbeatDue ? (HEARTBEAT_RUNS + 1) * 60_000 : 30_000),
		nextRunAt: tickTime,
		lastRunId: `tick:${tickTime - 60_000}:${space}/${pieceId}`,
		lastDurationMs: 3,
	};
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function base58Fixed(n: number, length: number): string {
	return fixed(n, BASE58, length);
}
function base64urlFixed(n: number, length: number): string {
	return fixed(n, BASE64URL, length);
}
/** n in the alphabet, left-padded to `length`, with a scrambled tail so keys look random. */
function fixed(n: number, alphabet: string, length: number): string {
	let digits = "";
	let x = n;
	do {
		digits = alphabet[x % alphabet.length] + digits;
		x = Math.floor(x / alphabet.length);
	} while (x > 0);
	let tail = "";
	let h = (n + 1) * 2654435761;
	while (tail.length < length - digits.length) {
		h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
		tail += alphabet[h % alphabet.length];
	}
	// The digits lead, so keys of consecutive pieces stay distinct and sorted by index.
	return (digits.padStart(8, alphabet[0]) + tail).slice(0, length);
}

/**
 * Writes pieces from..from+count-1, due at tickTime; with `shards`, only those whose space is
 * in one of them (the arrival rig gives each Miniflare instance shards of its own). Returns how
 * many it wrote.
 */
export async function seed(env: Pick<Env, "REGISTRY">, from: number, count: number, tickTime: number, shards?: ReadonlySet<number>): Promise<number> {
	const seededAt = Date.now();
	const entries = Array.from({ length: count }, (_, k) => seedEntry(from + k, tickTime, seededAt)).filter((entry) => !shards || shards.has(shardOf(entry.space)));
	await forEachLimit(entries, 6, async (entry) => {
		// As test/helpers.ts seedPiece: the full entry as the value, its summary as metadata.
		await env.REGISTRY.put(pieceKey(entry), JSON.stringify(entry), { metadata: summarise(entry) });
	});
	return entries.length;
}
