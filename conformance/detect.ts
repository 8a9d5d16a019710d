import { PROTOCOL_V2 } from "../src/runtime/protocol-v2";
import { errorOf } from "./check";
import type { Kit } from "./kit";
import { dispatch, probeRun } from "./kit-v2";

/** The protocol version the kit will check, and why, for the header lines. */
export interface Detection {
	version: "1" | "2";
	/** One line: the version and how it was chosen. */
	why: string;
}

/**
 * Asks the endpoint which protocol it speaks, the way the scheduler would find out: a signed
 * protocol 2 probe dispatch (a probe runs nothing, so asking costs the runtime nothing). An
 * answer with `bg-protocol: 2`, whatever its status, is a protocol 2 runtime's; anything else
 * (a version 1 runtime's refusal of version 2, another server, silence) is checked as version 1,
 * as the kit always did.
 */
export async function detectProtocol(kit: Kit): Promise<Detection> {
	const probe = "a signed protocol 2 probe dispatch";
	const answer = await dispatch(kit, [probeRun(kit)]);
	if (!answer.answered) return { version: "1", why: `protocol 1 assumed: ${probe} got no answer (${answer.why})` };
	const error = errorOf(answer.body);
	const said = `HTTP ${answer.status}${error ? ` {"error": ${JSON.stringify(error)}}` : ""}`;
	if (answer.version === PROTOCOL_V2) return { version: "2", why: `protocol 2 detected: ${probe} was answered ${said} with bg-protocol: 2` };
	const header = answer.version === null ? "without the bg-protocol header" : `with bg-protocol: ${answer.version}`;
	return { version: "1", why: `protocol 1 detected: ${probe} was answered ${said} ${header}, not bg-protocol: 2` };
}

/** The line for a version the user chose with --protocol. */
export function forced(version: "1" | "2"): Detection {
	return { version, why: `protocol ${version} as --protocol ${version} says (not detected)` };
}
