import { base64urlnopad } from "@scure/base";
import { describe, expect, it } from "vitest";
import { identityFromPassphrase } from "../../src/identity/ed25519";
import { oneOffMessage } from "../../src/messages";
import { REPORT_GRACE_MS, issueTicket, readTicket } from "../../src/runtime/ticket";
import { T0, newPieceId, newSpace } from "../ids";

describe("tickets: a dispatched run, sealed by the scheduler", async () => {
	const scheduler = await identityFromPassphrase("scheduler");
	const message = oneOffMessage("manual", { space: newSpace(), pieceId: newPieceId(), integration: "gmail" }, T0);

	it("reads back the run it was issued for, until it expires", async () => {
		const ticket = await issueTicket(scheduler, message, 2, T0, 600_000);
		expect(await readTicket(scheduler, ticket, T0 + 1)).toEqual({ status: "valid", message, attempt: 2, dispatchedAt: T0 });
		expect(await readTicket(scheduler, ticket, T0 + 600_000 + REPORT_GRACE_MS)).toMatchObject({ status: "valid" });
		expect(await readTicket(scheduler, ticket, T0 + 600_000 + REPORT_GRACE_MS + 1)).toEqual({ status: "late" });
	});

	it("is a stranger's unless this identity sealed it, unchanged", async () => {
		const ticket = await issueTicket(scheduler, message, 1, T0, 600_000);
		const other = await identityFromPassphrase("another scheduler");
		expect(await readTicket(other, ticket, T0)).toEqual({ status: "unknown" });
		const [payload, mac] = ticket.split(".") as [string, string];
		const forged = base64urlnopad.encode(new TextEncoder().encode(new TextDecoder().decode(base64urlnopad.decode(payload)).replace('"manual"', '"tick"')));
		for (const bad of [`${forged}.${mac}`, `${payload}.${mac.slice(1)}`, `${payload}`, `${payload}.${mac}.x`, "", 42, null, "x".repeat(9000)]) {
			expect(await readTicket(scheduler, bad, T0)).toEqual({ status: "unknown" });
		}
	});
});
