import { listSetting } from "../util/text";

/**
 * Who among the identities Cloudflare Access admits is an admin here: the list ACCESS_ADMINS
 * names (comma- or whitespace-separated). Each entry is one of
 *   `alice@example.com`  that person (the JWT's `email` claim; case does not matter),
 *   `@example.com`       anyone whose email is at that domain (not its subdomains),
 *   `<client id>.access` an Access service token, for scripts and the CLI: its JWT carries
 *                        the client id in `common_name` and no email,
 *   `*`                  whoever the Access application's policies admit, people and service
 *                        tokens alike: Access alone decides.
 * An empty list allows no one: Access policies are often broader than the admins of one tool
 * (a whole organisation, a one-time PIN to any address), so admitting everyone Access lets in
 * is said explicitly, never assumed.
 */
export interface AccessAdmins {
	anyone: boolean;
	emails: ReadonlySet<string>;
	domains: ReadonlySet<string>;
	clientIds: ReadonlySet<string>;
}

/** Who signed in through Access: a person's email, or a service token's client id. */
export type AccessIdentity = { email: string } | { clientId: string };

/** The allow-list ACCESS_ADMINS holds. */
export function parseAccessAdmins(value: string | undefined): AccessAdmins {
	const emails = new Set<string>();
	const domains = new Set<string>();
	const clientIds = new Set<string>();
	let anyone = false;
	for (const entry of listSetting(value)) {
		if (entry === "*") anyone = true;
		else if (entry.startsWith("@")) domains.add(entry.slice(1).toLowerCase());
		else if (entry.includes("@")) emails.add(entry.toLowerCase());
		else clientIds.add(entry);
	}
	return { anyone, emails, domains, clientIds };
}

/** Whether the list allows no one at all. */
export function allowsNoOne(admins: AccessAdmins): boolean {
	return !admins.anyone && admins.emails.size + admins.domains.size + admins.clientIds.size === 0;
}

/** Whether an identity Access vouched for is an admin. */
export function isAccessAdmin(identity: AccessIdentity, admins: AccessAdmins): boolean {
	if (admins.anyone) return true;
	if ("clientId" in identity) return admins.clientIds.has(identity.clientId);
	const email = identity.email.toLowerCase();
	const at = email.lastIndexOf("@");
	return admins.emails.has(email) || (at > 0 && admins.domains.has(email.slice(at + 1)));
}
