import { describe, expect, it } from "vitest";
import { allowsNoOne, isAccessAdmin, parseAccessAdmins } from "../../src/policy/access-admins";

describe("ACCESS_ADMINS: who among the identities Access admits is an admin", () => {
	const admins = parseAccessAdmins(" alice@example.com, @Ops.Example.com\n2f8e1c3b.access ");

	it.each([
		[{ email: "alice@example.com" }, true],
		[{ email: "ALICE@example.COM" }, true],
		[{ email: "bob@ops.example.com" }, true],
		[{ email: "bob@sub.ops.example.com" }, false],
		[{ email: "bob@evil-ops.example.com" }, false],
		[{ email: "alice@example.com.evil" }, false],
		[{ email: "@ops.example.com" }, false],
		[{ email: "bob@example.com" }, false],
		[{ clientId: "2f8e1c3b.access" }, true],
		[{ clientId: "2F8E1C3B.access" }, false],
		[{ clientId: "alice@example.com" }, false],
	] as const)("%j → %s", (identity, allowed) => {
		expect(isAccessAdmin(identity, admins)).toBe(allowed);
	});

	it('admits no one when empty, and whoever Access admits only with "*"', () => {
		for (const value of [undefined, "", " , \n"]) expect(allowsNoOne(parseAccessAdmins(value))).toBe(true);
		const anyone = parseAccessAdmins("*");
		expect(allowsNoOne(anyone)).toBe(false);
		expect(isAccessAdmin({ email: "x@y.test" }, anyone)).toBe(true);
		expect(isAccessAdmin({ clientId: "z.access" }, anyone)).toBe(true);
		expect(isAccessAdmin({ email: "x@y.test" }, parseAccessAdmins(""))).toBe(false);
	});
});
