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

export default defineConfig({
	test: {
		projects: [
			{
				// The Worker, inside workerd with real local KV and Queues and the reference runtime.
				plugins: [
					cloudflareTest({
						wrangler: { configPath: "./wrangler.toml" },
						miniflare: {
							// Test-only values: a short run timeout, which the `slow` example piece outlasts.
							// Runs are not spread over the minute here (tests wait for them); the spread is tested on its own.
							bindings: { ADMIN_TOKEN: "test-admin-token", RUNTIME_TIMEOUT_MS: "300", SPREAD_SECONDS: "0", OPERATOR_PASS },
							serviceBindings: { RUNTIME: "reference-runtime" },
							// Plain fetch() (the PIECE_RUNTIME_URL path) also lands on the reference runtime.
							outboundService: "reference-runtime",
							workers: [
								{
									name: "reference-runtime",
									modules: true,
									scriptPath: REFERENCE_RUNTIME,
									compatibilityDate: "2026-08-22",
									bindings: { SLOW_PIECE_MS: "1500", RUN_LIMIT_MS: "300", ALLOWED_SIGNERS: SERVICE_DID },
								},
							],
						},
					}),
				],
				test: {
					name: "worker",
					include: ["test/**/*.test.ts"],
					exclude: ["test/node/**", "test/dashboard/**", "test/policy/**"],
					testTimeout: 20_000,
					// The Worker logs a JSON line per event; show them only for a failing test.
					silent: "passed-only",
				},
			},
			{
				// The dashboard in Debian's Chromium against `npm start`'s system: `npm run test:dashboard`.
				test: { name: "dashboard", include: ["test/dashboard/**/*.test.ts"], environment: "node", testTimeout: 60_000, hookTimeout: 240_000, fileParallelism: false },
			},
			{
				// The command-line tools, in Node, where they run; and the pure policy, which needs no workerd.
				test: { name: "node", include: ["test/node/**/*.test.ts", "test/policy/**/*.test.ts"], environment: "node", testTimeout: 20_000 },
			},
		],
	},
});
