// What both bench rigs (`npm run bench`: bench/run.mjs; `npm run bench:arrivals`:
// bench/arrivals.mjs) share: the settings wrangler.toml ships, the bundles of the bench Worker
// and the bench runtime, and the two Workers' Miniflare definitions; `npm run load`
// (bench/load.mjs) reads the registration limit from here too. A harness, not deployed.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { buildSync } from "esbuild";

/** The passphrase of the bench runtime's report key; the bench Worker allows its DID (RUNTIME_SIGNERS), as production must. */
export const RUNTIME_PASS = "bench runtime";

/** The settings wrangler.toml ships that the rigs run with (its comments left out, so a bracket in one cannot end a table early). */
export function shippedSettings(root) {
	const toml = readFileSync(join(root, "wrangler.toml"), "utf8").replace(/#.*$/gm, "");
	const string = (name, fallback) => new RegExp(`^${name}\\s*=\\s*"([^"]*)"`, "m").exec(toml)?.[1] ?? fallback;
	const runsConsumer = /\[\[queues\.consumers\]\]\s*queue = "bg-piece-runs"([^[]*)/.exec(toml)?.[1] ?? "";
	// Workers Logs: off without [observability] enabled = true; with it, head_sampling_rate
	// (default 1) of the invocations are logged, each with its console lines.
	const observability = /^\[observability\]\s*\n((?:(?!\[)[^\n]*\n?)*)/m.exec(toml)?.[1] ?? "";
	return {
		compatibilityDate: string("compatibility_date", "2026-08-22"),
		protocol: string("RUNTIME_PROTOCOL", "1"),
		timeoutMs: string("RUNTIME_TIMEOUT_MS", "600000"),
		spreadSeconds: Number(string("SPREAD_SECONDS", "60")),
		batch: {
			size: Number(/max_batch_size = (\d+)/.exec(runsConsumer)?.[1] ?? 100),
			timeoutSeconds: Number(/max_batch_timeout = (\d+)/.exec(runsConsumer)?.[1] ?? 2),
		},
		observability: {
			enabled: /^\s*enabled\s*=\s*true/m.test(observability),
			headSamplingRate: Number(/^\s*head_sampling_rate\s*=\s*([\d.]+)/m.exec(observability)?.[1] ?? 1),
		},
		registrationLimit: registrationLimit(toml),
	};
}

/**
 * The registration route's rate limit as wrangler.toml sets it: `{limit, period}` of the
 * `[[ratelimits]]` table named REGISTRATION_LIMITER (`simple = { limit = N, period = P }`,
 * requests per P seconds), or null without one. `toml` is the file's text, comments removed.
 */
export function registrationLimit(toml) {
	for (const [, table] of toml.matchAll(/^\[\[ratelimits\]\]\s*\n((?:(?!\[)[^\n]*\n?)*)/gm)) {
		if (!/^\s*name\s*=\s*"REGISTRATION_LIMITER"/m.test(table)) continue;
		const simple = /^\s*simple\s*=\s*\{([^}]*)\}/m.exec(table)?.[1] ?? "";
		const limit = Number(/\blimit\s*=\s*(\d+)/.exec(simple)?.[1]);
		const period = Number(/\bperiod\s*=\s*(\d+)/.exec(simple)?.[1]);
		if (limit > 0 && period > 0) return { limit, period };
	}
	return null;
}

/** Bundles the bench Worker and the bench runtime into `out` (worker.mjs, runtime.mjs). */
export function buildBenchWorkers(root, out) {
	// node:async_hooks is workerd's own (the nodejs_als flag), for counting console calls per invocation.
	const options = { bundle: true, format: "esm", logLevel: "error", target: "es2022", platform: "browser", conditions: ["workerd", "worker", "browser"], external: ["node:async_hooks"] };
	buildSync({ ...options, entryPoints: [join(root, "bench/worker.ts")], outfile: join(out, "worker.mjs") });
	buildSync({ ...options, entryPoints: [join(root, "bench/runtime.ts")], outfile: join(out, "runtime.mjs") });
}

/**
 * The Miniflare definitions of the bench Worker (the product's real handlers, counting
 * bindings) and the bench runtime, bound to each other both ways. `extraQueues` are further
 * run queues (BENCH_RUNS_1…), each consumed like `bg-piece-runs`; `bindings` and
 * `runtimeBindings` add to each Worker's vars.
 */
export function benchWorkers({ out, settings, runtimeDid, spreadSeconds, consumer, extraQueues = [], bindings = {}, runtimeBindings = {}, inspector = false }) {
	return [
		{
			name: "bench-worker",
			modules: true,
			scriptPath: join(out, "worker.mjs"),
			compatibilityDate: settings.compatibilityDate,
			...(inspector ? { unsafeInspectorProxy: true } : {}),
			compatibilityFlags: ["nodejs_als"],
			kvNamespaces: { REGISTRY: "bench-registry" },
			queueProducers: {
				RUNS: { queueName: "bg-piece-runs" },
				FANOUT: { queueName: "bg-piece-fanout" },
				...Object.fromEntries(extraQueues.map((queueName, i) => [`BENCH_RUNS_${i + 1}`, { queueName }])),
			},
			queueConsumers: {
				"bg-piece-runs": consumer,
				"bg-piece-fanout": { maxBatchSize: 1, maxBatchTimeout: 0, maxRetries: 2 },
				...Object.fromEntries(extraQueues.map((name) => [name, consumer])),
			},
			serviceBindings: { RUNTIME: "bench-runtime" },
			bindings: {
				SPREAD_SECONDS: String(spreadSeconds),
				RUNTIME_TIMEOUT_MS: settings.timeoutMs,
				OPERATOR_PASS: "bench",
				PIECE_RUNTIME_URL: "",
				RUNTIME_PROTOCOL: settings.protocol,
				// A service binding ignores the host; the path is what the runtime signs.
				REPORT_URL: "https://bench-worker.internal/api/runtime/reports",
				RUNTIME_SIGNERS: runtimeDid,
				...bindings,
			},
		},
		{
			name: "bench-runtime",
			modules: true,
			scriptPath: join(out, "runtime.mjs"),
			compatibilityDate: settings.compatibilityDate,
			serviceBindings: { SCHEDULER: "bench-worker" },
			bindings: { RUNTIME_PASS, BENCH_LATENCY: "", ...runtimeBindings },
		},
	];
}
