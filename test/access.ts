import { env } from "cloudflare:workers";
import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair, type JWK, type JWTPayload } from "jose";

/*
 * Cloudflare Access, as the tests play it: an Access team with RSA keys made here, whose certs
 * URL the tests' outbound stand-in (vitest.config.ts, TEST_OUTBOUND) serves, and JWTs signed as
 * Access signs them. Nothing reaches the network.
 */

/** The test stand-in's control binding (vitest.config.ts). */
const certs = () => (env as unknown as { ACCESS_CERTS: Fetcher }).ACCESS_CERTS;

/** The AUD tag of the tests' Access application. */
export const TEST_AUD = "4714c1358e65fe4b408ad6d432a5f878f08194bdb4752441fd56faefa9b2b6f2";

let teams = 0;

/** An Access team: its domain, its signing keys (published at its certs URL), and JWTs signed with them. */
export interface TestTeam {
	domain: string;
	issuer: string;
	/** The settings of a Worker behind this team's Access application. */
	settings: Pick<Env, "ACCESS_TEAM_DOMAIN" | "ACCESS_AUD" | "ACCESS_ADMINS">;
	/** A JWT as Access issues it for this application, with `claims` over the defaults; `key` signs it (default the team's). */
	jwt(claims?: JWTPayload & { email?: string; common_name?: string }, key?: TestKey): Promise<string>;
	/** Publishes these keys at the team's certs URL instead. */
	publish(...keys: TestKey[]): Promise<void>;
	/** Makes the certs URL answer this HTTP status (0: answer again). */
	fail(status: number): Promise<void>;
	/** How often the Worker fetched the team's certs. */
	fetches(): Promise<number>;
	key: TestKey;
}

/** An RS256 key pair with its key id. */
export interface TestKey {
	kid: string;
	privateKey: CryptoKey;
	publicJwk: JWK;
}

/** A fresh RS256 key, as Access's are (2048-bit RSA). `kid` may be chosen, e.g. to forge one with another's id. */
export async function newKey(kid = `kid-${crypto.randomUUID()}`): Promise<TestKey> {
	const { privateKey, publicKey } = await generateKeyPair("RS256", { modulusLength: 2048 });
	return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" } };
}

/** A team of its own (a test file's or a test's), its keys published; `admins` is ACCESS_ADMINS. */
export async function newTeam(admins = "alice@example.com, @ops.example.com, 2f8e1c3b.access"): Promise<TestTeam> {
	const domain = `team-${++teams}-${crypto.randomUUID().slice(0, 8)}.cloudflareaccess.com`;
	const issuer = `https://${domain}`;
	const key = await newKey();
	const control = (path: string, init?: RequestInit) => certs().fetch(`https://access-certs.test${path}${path.includes("?") ? "&" : "?"}team=${domain}`, init);
	const team: TestTeam = {
		domain,
		issuer,
		key,
		settings: { ACCESS_TEAM_DOMAIN: domain, ACCESS_AUD: TEST_AUD, ACCESS_ADMINS: admins },
		async jwt(claims = {}, signer = key) {
			const now = Math.floor(Date.now() / 1000);
			const payload: JWTPayload = { aud: [TEST_AUD], iss: issuer, iat: now, nbf: now, exp: now + 3600, sub: crypto.randomUUID(), type: "app", ...claims };
			return new SignJWT(payload).setProtectedHeader({ alg: "RS256", kid: signer.kid, typ: "JWT" }).sign(signer.privateKey);
		},
		async publish(...keys) {
			await control("/__keys", { method: "PUT", body: JSON.stringify({ keys: keys.map((k) => k.publicJwk) }) });
		},
		async fail(status) {
			await control(`/__fail?status=${status}`, { method: "PUT" });
		},
		async fetches() {
			return (await (await control("/__fetches")).json<{ fetches: number }>()).fetches;
		},
	};
	await team.publish(key);
	return team;
}

/** An unsigned JWT (`alg: none`) with these claims. */
export function unsignedJwt(claims: JWTPayload): string {
	return new UnsecuredJWT(claims).encode();
}
