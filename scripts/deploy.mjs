#!/usr/bin/env node
// `npm run deploy` and `npm run deploy:check`: `wrangler deploy` (or its dry run), after the
// checks that would otherwise fail only once Cloudflare has the upload. A deploy with the
// placeholder KV namespace id is refused, naming the command that creates the namespace; the
// dry run (`--dry-run`, which uploads nothing) warns and goes on, so CI can build the Worker.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const dryRun = args.includes("--dry-run");

/** What in wrangler.toml cannot be deployed as it stands: one sentence each. */
export function deployProblems(toml) {
	const problems = [];
	// Each [[kv_namespaces]] table runs to the next table header.
	for (const block of toml.split(/^\[\[kv_namespaces\]\]\s*$/m).slice(1)) {
		const body = block.split(/^\[/m)[0];
		const binding = /^\s*binding\s*=\s*"([^"]*)"/m.exec(body)?.[1] ?? "?";
		const id = /^\s*id\s*=\s*"([^"]*)"/m.exec(body)?.[1] ?? "";
		if (!/^[0-9a-f]{32}$/.test(id) || /^0+$/.test(id)) {
			problems.push(`the KV namespace ${binding} has the placeholder id "${id}": run \`npx wrangler kv namespace create ${binding}\` and put the id it prints into wrangler.toml`);
		}
	}
	return problems;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
	const problems = deployProblems(readFileSync(join(root, "wrangler.toml"), "utf8"));
	for (const problem of problems) console.error(`${dryRun ? "warning" : "error"}: ${problem}`);
	if (problems.length && !dryRun) {
		console.error("Nothing was deployed. The steps: README, Deploying.");
		process.exit(1);
	}
	const wrangler = join(root, "node_modules", "wrangler", "bin", "wrangler.js");
	const result = spawnSync(process.execPath, [wrangler, "deploy", ...args], { cwd: root, stdio: "inherit" });
	process.exit(result.status ?? 1);
}
