import { logEvent } from "../log";
import { DEFAULT_OPERATOR_PASS, decodePkcs8, identityFromPassphrase, identityFromPkcs8, type Identity } from "./ed25519";

/** The bindings the service identity is made from. */
export type IdentityEnv = Pick<Env, "IDENTITY" | "OPERATOR_PASS">;

let cached: { source: string; identity: Promise<Identity> } | null = null;

/**
 * The key this service signs runtime requests with: `IDENTITY` (PKCS#8) if set, else the
 * passphrase `OPERATOR_PASS`, else the insecure default. Derived once per isolate.
 */
export function serviceIdentity(env: IdentityEnv): Promise<Identity> {
	const source = env.IDENTITY ? `pkcs8:${env.IDENTITY}` : `pass:${env.OPERATOR_PASS || DEFAULT_OPERATOR_PASS}`;
	if (cached?.source !== source) {
		if (!env.IDENTITY && !env.OPERATOR_PASS) {
			logEvent("identity-insecure", { warning: `no IDENTITY or OPERATOR_PASS set: signing with the default passphrase "${DEFAULT_OPERATOR_PASS}", which anyone can reproduce` });
		}
		const identity = env.IDENTITY ? identityFromPkcs8(decodePkcs8(env.IDENTITY)) : identityFromPassphrase(env.OPERATOR_PASS || DEFAULT_OPERATOR_PASS);
		// A broken key must not stay cached: the next call tries again.
		identity.catch(() => {
			if (cached?.identity === identity) cached = null;
		});
		cached = { source, identity };
	}
	return cached.identity;
}
