// `npm run load` (bench/load.mjs): the system `npm start` runs (scripts/start.mjs: the
// scheduler and the reference runtime under wrangler dev, local KV and Queues, the ticker),
// started on free ports with a fresh state directory, and stopped with every process it
// started. A harness, not deployed.
import { spawn } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isFree } from "../scripts/ports.mjs";

/**
 * A port P where P, P + 1 (the runtime) and both + 1000 (the inspectors), npm start's four
 * ports, are free: tried from a random point of 20000–29998, so two load runs, and an
 * `npm start` on its default 8787, do not meet.
 */
export async function freePorts() {
	const first = 20_000 + 2 * Math.floor(Math.random() * 5_000);
	for (let i = 0; i < 5_000; i++) {
		const port = 20_000 + ((first - 20_000 + 2 * i) % 10_000);
		if ((await Promise.all([port, port + 1, port + 1000, port + 1001].map(isFree))).every(Boolean)) return port;
	}
	throw new Error("no four free ports found in 20000–30999");
}

/**
 * Starts `scripts/start.mjs` in a process group of its own with `settings` (TICK_SECONDS,
 * ADMIN_TOKEN, …) on free ports and a fresh STATE_DIR, its output going to `logFile`; resolves
 * once it says it runs. `stop()` ends it and answers `{stopped, left}`: the processes of its
 * groups that ran before the stop, and those still running after it (none, normally), each
 * "pid (command)".
 */
export async function startSystem(root, settings, logFile) {
	const port = await freePorts();
	const stateDir = mkdtempSync(join(tmpdir(), "bg-load-"));
	const log = createWriteStream(logFile);
	// What would point the system elsewhere is cleared: this is npm start's own local system.
	const child = spawn(process.execPath, [join(root, "scripts", "start.mjs")], {
		cwd: root,
		detached: true,
		stdio: ["ignore", "pipe", "pipe"],
		env: { ...process.env, PORT: String(port), RUNTIME_PORT: String(port + 1), STATE_DIR: stateDir, BASE_PATH: "", PIECE_RUNTIME_URL: "", REPORT_URL: "", LOG_FORMAT: "lines", ...settings },
	});
	let output = "";
	const ready = new Promise((resolve, reject) => {
		for (const stream of [child.stdout, child.stderr]) {
			stream.on("data", (chunk) => {
				log.write(chunk);
				if (output.length < 100_000) output += chunk;
				if (output.includes("Background piece scheduler running on")) resolve();
			});
		}
		child.once("exit", (code, signal) => reject(new Error(`npm start exited (${signal ?? `code ${code}`}) before it ran:\n${output.slice(-3000)}`)));
	});
	const exited = new Promise((resolve) => child.once("exit", resolve));
	// The process groups it started: its own, each wrangler's (with its workerd) and the
	// watchdog's, each led by a child of the script (scripts/start.mjs).
	let groups = [child.pid];

	// Once: a second call answers what the first found.
	let stopped;
	const stop = () => (stopped ??= stopAll());
	const stopAll = async () => {
		let running = [];
		if (child.exitCode === null && child.signalCode === null) {
			groups = [child.pid, ...childrenOf(child.pid)];
			running = processesIn(groups);
			process.kill(-child.pid, "SIGTERM");
			await Promise.race([exited, sleep(15_000)]);
		}
		// Its wranglers end within 5 s of it (SIGKILL then) and the watchdog once they are gone.
		let left = [];
		for (let i = 0; i < 60; i++) {
			left = processesIn(groups);
			if (!left.length) break;
			await sleep(250);
		}
		// Reported as a missed goal, and not left running.
		for (const group of left.length ? groups : []) {
			try {
				process.kill(-group, "SIGKILL");
			} catch {}
		}
		log.end();
		rmSync(stateDir, { recursive: true, force: true });
		return { stopped: running, left };
	};
	try {
		await Promise.race([ready, sleep(180_000).then(() => Promise.reject(new Error(`npm start did not run within 180 s:\n${output.slice(-3000)}`)))]);
	} catch (error) {
		await stop();
		throw error;
	}
	groups = [child.pid, ...childrenOf(child.pid)];
	return { base: `http://127.0.0.1:${port}`, port, stop };
}

/** `/proc/<pid>/stat`'s fields after the command name (which may hold spaces): state, ppid, pgrp, … */
function stat(pid) {
	try {
		const text = readFileSync(`/proc/${pid}/stat`, "utf8");
		return { command: text.slice(text.indexOf("(") + 1, text.lastIndexOf(")")), fields: text.slice(text.lastIndexOf(")") + 2).split(" ") };
	} catch {
		return null;
	}
}

function allPids() {
	return readdirSync("/proc").filter((name) => /^\d+$/.test(name));
}

/** The pids whose parent is `parent`. */
function childrenOf(parent) {
	return allPids().filter((pid) => stat(pid)?.fields[1] === String(parent)).map(Number);
}

/** "pid (command)" of each live process in one of `groups` (a zombie is gone already). */
function processesIn(groups) {
	const wanted = new Set(groups.map(String));
	return allPids().flatMap((pid) => {
		const s = stat(pid);
		return s && s.fields[0] !== "Z" && wanted.has(s.fields[2]) ? [`${pid} (${s.command})`] : [];
	});
}

function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}
