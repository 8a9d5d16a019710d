import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { buildSync } from "esbuild";
import { defineConfig } from "vitest/config";
import { identityFromPassphrase } from "./src/identity/ed25519";

// Extra Workers must be JavaScript: bundle the reference runtime (TypeScript) for the tests.
const REFERENCE_RUNTIME = ".wrangler/test/reference-runtime.mjs";
buildSync({ entryPoints: ["dev/reference-runtime/index.ts"], outfile: REFERENCE_RUNTIME, bundle: true, format: "esm", platform: "neutral", logLevel: "error" });

/** The scheduler's identity in the tests; the reference runtime allows only its DID. */
const OPERATOR_PASS = "test operator pass";
const SERVICE_DID = (await identityFromPassphrase(OPERATOR_PASS)).did;
/** The reference runtime's report key (protocol 2); the scheduler allows only its DID. */
const RUNTIME_PASS = "test runtime pass";
const RUNTIME_DID = (await identityFromPassphrase(RUNTIME_PASS)).did;

/**
 * A TEST RELAY for protocol 2 reports: the reference runtime's outbound fetches (its reports
 * to REPORT_URL) land here, and the tests hand them to the Worker under test (test/reports.ts),
 * since an auxiliary Worker cannot reach the Worker under test directly. The requests are the
 * runtime's own, signatures and all. Test files run at once and share the relay, so each
 * reports to a mailbox of its own (REPORT_URL's \`box\` query, which no signature covers).
 */
const REPORT_RELAY = `
const outboxes = new Map();
export default {
	async fetch(request) {
		const url = new URL(request.url);
		const box = url.searchParams.get("box") ?? "";
		if (request.method === "GET" && url.pathname === "/__outbox") {
			const taken = outboxes.get(box) ?? []; outboxes.delete(box);
			return Response.json(taken);
		}
		outboxes.set(box, [...(outboxes.get(box) ?? []), { url: request.url, headers: Object.fromEntries(request.headers), body: await request.text() }]);
		return Response.json({ results: [] }, { headers: { "bg-protocol": "2" } });
	},
};`;

/**
 * A TEST STAND-IN for the outside world the Worker under test fetches from (its
 * `outboundService`): Cloudflare Access's certs URLs (https://<team>.cloudflareaccess.com/
 * cdn-cgi/access/certs) answer with the keys a test put there for that team, made in the test,
 * so no test reaches the network; everything else (PIECE_RUNTIME_URL) goes on to the reference
 * runtime, as before. Through the ACCESS_CERTS binding a test sets a team's keys
 * (PUT /__keys?team=…, a JWKS), makes its certs fail (PUT /__fail?team=…&status=503) and
 * counts its fetches (GET /__fetches?team=…). Test files share it: each uses teams of its own.
 */
const TEST_OUTBOUND = `
const teams = new Map();
const team = (name) => teams.get(name) ?? teams.set(name, { keys: { keys: [] }, fail: 0, fetches: 0 }).get(name);
export default {
	async fetch(request, env) {
		const url = new URL(request.url);
		if (url.hostname === "access-certs.test") {
			const t = team(url.searchParams.get("team") ?? "");
			if (url.pathname === "/__keys") { t.keys = await request.json(); t.fail = 0; return new Response("ok"); }
			if (url.pathname === "/__fail") { t.fail = Number(url.searchParams.get("status")); return new Response("ok"); }
			if (url.pathname === "/__fetches") return Response.json({ fetches: t.fetches });
		}
		if (url.hostname.endsWith(".cloudflareaccess.com")) {
			const t = team(url.hostname);
			t.fetches++;
			if (url.pathname !== "/cdn-cgi/access/certs") return new Response("not found", { status: 404 });
			return t.fail ? new Response("unavailable", { status: t.fail }) : Response.json(t.keys);
		}
		return env.RUNTIME.fetch(request);
	},
};`;

export default defineConfig({
	test: {
		// The Worker logs a JSON line per event: shown only for a failing test. (The reporter
		// reads this from the root, not from a project.)
		silent: "passed-only",
		projects: [
			{
				// The Worker, inside workerd with real local KV and Queues and the reference runtime.
				plugins: [
					cloudflareTest({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							// Test-only values: a short run timeout, which the `slow` example piece outlasts.
							// Runs are not spread over the minute here (tests wait for them); the spread is tested on its own.
							// Protocol 1 unless a test says otherwise (protocol 2 tests set RUNTIME_PROTOCOL in their env).
							bindings: {
								ADMIN_TOKEN: "test-admin-token",
								RUNTIME_TIMEOUT_MS: "300",
								SPREAD_SECONDS: "0",
								OPERATOR_PASS,
								RUNTIME_PROTOCOL: "1",
								REPORT_URL: "https://scheduler.test/api/runtime/reports",
								RUNTIME_SIGNERS: RUNTIME_DID,
							},
							serviceBindings: { RUNTIME: "reference-runtime", REPORT_RELAY: "report-relay", ACCESS_CERTS: "test-outbound" },
							// Plain fetch(): Access's certs URLs land on the test's keys, the rest (the
							// PIECE_RUNTIME_URL path) on the reference runtime.
							outboundService: "test-outbound",
							workers: [
								{
									name: "reference-runtime",
									modules: true,
									scriptPath: REFERENCE_RUNTIME,
									compatibilityDate: "2026-08-22",
									bindings: { SLOW_PIECE_MS: "1500", RUN_LIMIT_MS: "300", ALLOWED_SIGNERS: SERVICE_DID, RUNTIME_PASS, REPORT_FLUSH_MS: "50", LOG_RUNS: "false", ASYNC_PIECE_MS: "200" },
									// Its reports (fetches to REPORT_URL) go to the relay.
									outboundService: "report-relay",
								},
								{ name: "report-relay", modules: true, script: REPORT_RELAY, compatibilityDate: "2026-08-22" },
								{ name: "test-outbound", modules: true, script: TEST_OUTBOUND, compatibilityDate: "2026-08-22", serviceBindings: { RUNTIME: "reference-runtime" } },
							],
						},
					}),
				],
				test: {
					name: "worker",
					include: ["test/**/*.test.ts"],
					exclude: ["test/node/**", "test/dashboard/**", "test/system/**", "test/policy/**"],
					testTimeout: 20_000,
				},
			},
			{
				// The dashboard in Debian's Chromium against `npm start`'s system: `npm run test:dashboard`.
				// With it, `npm start` itself stopped the ways users stop it (test/system).
				test: { name: "dashboard", include: ["test/dashboard/**/*.test.ts", "test/system/**/*.test.ts"], environment: "node", testTimeout: 60_000, hookTimeout: 240_000, fileParallelism: false },
			},
			{
				// The command-line tools, in Node, where they run; and the pure policy, which needs no workerd.
				test: { name: "node", include: ["test/node/**/*.test.ts", "test/policy/**/*.test.ts"], environment: "node", testTimeout: 20_000 },
			},
		],
	},
});
