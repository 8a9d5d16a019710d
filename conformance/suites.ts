import type { Check } from "./check";
import { V1_CHECKS } from "./checks-v1";

/**
 * The checks for each protocol version, keyed by the value of the `bg-protocol` header that
 * version sends. This is where a later version plugs in: its flows go in a file of their own
 * (as checks-v1.ts holds version 1's), its list is added here, and `suiteFor` serves it to
 * a runtime that speaks it. Version 1's checks stay as they are for runtimes that speak 1.
 */
export const SUITES: Readonly<Record<string, readonly Check[]>> = {
	"1": V1_CHECKS,
};

/** The checks of one protocol version, or null for a version the kit does not know. */
export function suiteFor(version: string): readonly Check[] | null {
	return Object.hasOwn(SUITES, version) ? SUITES[version]! : null;
}
