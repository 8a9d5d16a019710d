import type { Check } from "./check";
import { V1_CHECKS } from "./checks-v1";
import { V2_CHECKS } from "./checks-v2";

/**
 * The checks for each protocol version, keyed by the value of the `bg-protocol` header that
 * version sends. Each version's flows are in a file of their own (checks-v1.ts, checks-v2.ts);
 * a later version adds its list here, and `suiteFor` serves it to a runtime that speaks it
 * (detect.ts finds out which). Version 1's checks stay as they are for runtimes that speak 1.
 */
export const SUITES: Readonly<Record<string, readonly Check[]>> = {
	"1": V1_CHECKS,
	"2": V2_CHECKS,
};

/** The checks of one protocol version, or null for a version the kit does not know. */
export function suiteFor(version: string): readonly Check[] | null {
	return Object.hasOwn(SUITES, version) ? SUITES[version]! : null;
}
