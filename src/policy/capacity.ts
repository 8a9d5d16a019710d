import type { TickSummary } from "../registry/store";

/*
 * The registry's global cap (MAX_PIECES), counted without a list of its own: a registration
 * that listed the registry would cost a KV list per 1,000 pieces, every time. The tick lists
 * every shard each minute anyway and records how many pieces it saw (`meta/last-tick`), so the
 * count is one KV read, and as stale as that record: up to a tick (a minute) plus KV's ≈ 60 s
 * of lag. Pieces registered meanwhile are not in it, so a flood can pass the cap by what it
 * registers in about two minutes (the registration limit bounds that per client); the cap
 * bounds the bill's order of magnitude, not an exact count, so that is enough.
 */

/** Default of MAX_PIECES: what one lane carries with room to spare, and what the bench measured. */
export const DEFAULT_MAX_PIECES = 100_000;

/** From this share of the cap on, health warns that the registry nears it. */
export const NEAR_CAP_RATIO = 0.9;

/** The cap from MAX_PIECES, or the default if unset or not a positive integer. */
export function maxPieces(value: string | undefined): number {
	const max = Number(value);
	return value !== undefined && value !== "" && Number.isInteger(max) && max > 0 ? max : DEFAULT_MAX_PIECES;
}

/**
 * The registry's size as the last tick counted it, or null before the first tick. The tick's
 * own invocation lists lane 0's shards; with more lanes the others are listed elsewhere, and
 * the shards hold equal shares (a hash of the space), so lane 0's count times the lanes is
 * the whole. (Lane 0 hands over past ≈ 900,000 pieces, far beyond any sensible cap; its count
 * is then a lower bound.)
 */
export function registrySize(tick: Pick<TickSummary, "listed" | "lanes"> | null): number | null {
	if (!tick) return null;
	return tick.listed * Math.max(1, tick.lanes ?? 1);
}

/** Where the registry stands against MAX_PIECES (`setting`), by the last tick's count. */
export function registryCapacity(tick: Pick<TickSummary, "listed" | "lanes"> | null, setting: string | undefined): Capacity {
	return capacity(registrySize(tick), maxPieces(setting));
}

/** Where the registry stands against its cap. */
export interface Capacity {
	state: "ok" | "near" | "full";
	/** The pieces counted (0 before the first tick). */
	pieces: number;
	max: number;
}

/** The registry's standing: `full` at the cap, `near` from NEAR_CAP_RATIO of it, else `ok`. */
export function capacity(pieces: number | null, max: number): Capacity {
	const counted = pieces ?? 0;
	const state = counted >= max ? "full" : counted >= NEAR_CAP_RATIO * max ? "near" : "ok";
	return { state, pieces: counted, max };
}
