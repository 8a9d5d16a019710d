// Secrets and the optional runtime binding: not in wrangler.toml, so `wrangler types` cannot
// see them. Declared here once for both the global `Env` and `cloudflare:workers`' env.
interface SchedulerSecrets {
	/** Bearer tokens of the admin routes, one or several (a rotation) separated by commas or whitespace; unset and no Cloudflare Access = admin routes refuse everything (503). */
	ADMIN_TOKEN?: string;
	/** If set, registration needs `Authorization: Bearer` with it (or an admin token). */
	REGISTRATION_TOKEN?: string;
	/** Passphrase of the service's Ed25519 identity (default `implicit trust`, insecure). */
	OPERATOR_PASS?: string;
	/** The service's Ed25519 key as PKCS#8 (PEM or base64); wins over OPERATOR_PASS. */
	IDENTITY?: string;
	/** Service binding to the piece runtime; wins over PIECE_RUNTIME_URL. */
	RUNTIME?: Fetcher;
}
interface Env extends SchedulerSecrets {}
declare namespace Cloudflare {
	interface Env extends SchedulerSecrets {}
}
