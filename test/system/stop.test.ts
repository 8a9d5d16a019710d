import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module of the start script, without types.
import { isFree } from "../../scripts/ports.mjs";

/*
 * `npm start` as a user runs it, stopped the ways a user (or a test harness) stops it: its
 * whole system (two wranglers, their workerd processes, the watchdog) must end, whichever
 * process the signal reaches, and leave its ports free for the next start.
 */

const PORT = 8830;
const stateDir = mkdtempSync(join(tmpdir(), "bg-stop-"));
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

/** Processes whose command line mentions this test's ports (wrangler, workerd under it). */
function leftovers(): string[] {
	const found: string[] = [];
	for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
		try {
			const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
			if (command.includes(`--port ${PORT}`) || command.includes(`--port ${PORT + 1}`) || command.includes(stateDir)) found.push(`${pid} ${command.slice(0, 100)}`);
		} catch {
			// Gone meanwhile.
		}
	}
	return found;
}

async function startSystem(command: string, args: string[]): Promise<{ child: ChildProcess; output: () => string }> {
	const child = spawn(command, args, { env: { ...process.env, PORT: String(PORT), STATE_DIR: stateDir, TICK_SECONDS: "0" }, stdio: ["ignore", "pipe", "pipe"] });
	let output = "";
	child.stdout!.on("data", (chunk) => (output += chunk));
	child.stderr!.on("data", (chunk) => (output += chunk));
	await expect.poll(() => output, { timeout: 120_000, interval: 250 }).toContain("Background piece scheduler running on");
	return { child, output: () => output };
}

async function expectAllGone() {
	await expect.poll(() => leftovers(), { timeout: 15_000, interval: 250 }).toEqual([]);
	for (const port of [PORT, PORT + 1, PORT + 1000, PORT + 1001]) expect(await isFree(port), `port ${port}`).toBe(true);
}

describe("npm start ends wholly", () => {
	it("when SIGTERM reaches npm (as `kill $!` after `npm start &` sends it), and prints a line a person can read per event", async () => {
		const { child, output } = await startSystem("npm", ["start", "--silent"]);
		// Wrangler's start-up noise is left out.
		expect(output()).not.toContain("Your Worker has access to the following bindings");
		expect(output()).not.toContain("Your types might be out of date");
		const space = "did:key:z6Mkm5EjoZz51YUD7PyVpBwaFtLBKabNCPGkpMy8X5wcqp5a";
		const body = JSON.stringify({ space, pieceId: `fid1:${"A".repeat(43)}`, integration: "counter" });
		expect((await fetch(`http://127.0.0.1:${PORT}/api/integrations/bg`, { method: "POST", body })).status).toBe(200);
		await expect.poll(output, { timeout: 20_000 }).toMatch(/\d\d:\d\d:\d\d ✓ success +z6Mkm5Ej…cqp5a\/fid1:AAAA…AAAAA +Successfully executed piece/u);
		expect(output()).toMatch(/registered +z6Mkm5Ej…cqp5a\/fid1:AAAA…AAAAA +counter \(created\)/u);
		child.kill("SIGTERM");
		await expectAllGone();
	}, 180_000);

	it("when its script is killed outright (SIGKILL): the watchdog ends the rest", async () => {
		const { child } = await startSystem(process.execPath, ["scripts/start.mjs"]);
		child.kill("SIGKILL");
		await expectAllGone();
	}, 180_000);
});
