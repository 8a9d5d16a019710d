import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A running `npm start` system (scheduler, reference runtime) on its own ports and state. */
export interface System {
	/** Where the Worker answers everything but registration: the origin, and BASE_PATH if set. */
	base: string;
	/** The origin alone, where registration is answered in every layout. */
	origin: string;
	adminToken: string;
	stop(): Promise<void>;
}

/**
 * Starts the whole system as `npm start` does (scripts/start.mjs), on `port` and `port + 1`,
 * with a fresh state directory and the ticker off, and waits until it answers. `basePath`
 * serves it as on the app's origin (BASE_PATH).
 */
export async function startSystem(port: number, basePath = ""): Promise<System> {
	const stateDir = mkdtempSync(join(tmpdir(), "bg-dashboard-"));
	const adminToken = "dashboard-test-token";
	const child: ChildProcess = spawn(process.execPath, ["scripts/start.mjs"], {
		env: { ...process.env, PORT: String(port), STATE_DIR: stateDir, TICK_SECONDS: "0", ADMIN_TOKEN: adminToken, BASE_PATH: basePath },
		stdio: ["ignore", "pipe", "pipe"],
		detached: true,
	});
	let output = "";
	child.stdout?.on("data", (chunk) => (output += chunk));
	child.stderr?.on("data", (chunk) => (output += chunk));
	const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
	const origin = `http://127.0.0.1:${port}`;
	const base = `${origin}${basePath}`;
	const stop = async () => {
		if (child.exitCode === null) process.kill(-child.pid!, "SIGTERM");
		await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
		rmSync(stateDir, { recursive: true, force: true });
	};
	for (let i = 0; i < 600; i++) {
		if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${output}`);
		try {
			if ((await fetch(`${base}/api/health`)).ok) return { base, origin, adminToken, stop };
		} catch {
			// Not up yet.
		}
		await new Promise((resolve) => setTimeout(resolve, 250));
	}
	await stop();
	throw new Error(`npm start did not answer within 150 s:\n${output}`);
}
