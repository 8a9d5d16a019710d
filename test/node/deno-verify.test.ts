import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const exec = promisify(execFile);

/**
 * The Deno binary of the `deno` devDependency. Its own locator, which also works when npm
 * ran no install scripts: it falls back to the platform package (@deno/<platform>).
 */
function denoBinary(): string {
	const install = createRequire(import.meta.url)("deno/install_api.cjs") as { runInstall(): string };
	return install.runInstall();
}

// Deno's caches go to a scratch folder, not the user's home.
const denoDir = mkdtempSync(join(tmpdir(), "bg-deno-"));
afterAll(() => rmSync(denoDir, { recursive: true, force: true }));

describe("the runtime verifier under Deno", () => {
	it("accepts the protocol page's worked example and a fresh request, refuses a tampered one and a replay; verifies v2 dispatches and reports", async () => {
		const { stdout } = await exec(
			denoBinary(),
			// Offline: no remote modules, nothing downloaded (@scure/base comes from node_modules via
			// package.json), no lock file written, no permission prompts.
			["run", "--no-remote", "--cached-only", "--no-lock", "--no-prompt", "test/deno/verify.deno.ts"],
			// Any npm download would fail at once against a closed local port, not hang on the network.
			{ env: { ...process.env, DENO_DIR: denoDir, DENO_NO_UPDATE_CHECK: "1", NPM_CONFIG_REGISTRY: "http://127.0.0.1:9/", NO_COLOR: "1" }, timeout: 15_000 },
		);
		expect(stdout).toMatch(/^deno \d+\.\d+\.\d+: all cases as expected$/m);
		for (const name of ["worked example", "worked example replayed", "worked example tampered", "worked example outside the skew window", "freshly signed", "freshly signed replayed", "freshly signed tampered", "v2 dispatch", "v2 dispatch replayed: its run is marked", "v2 dispatch with a v1 signature", "v2 report", "v2 report replayed"]) {
			expect(stdout).toMatch(new RegExp(`^PASS ${name}: `, "m"));
		}
		expect(stdout).not.toMatch(/^FAIL /m);
	});
});
