#!/usr/bin/env node
// `node scripts/watchdog.mjs <owner pid> <process group>…`: ends the process groups (each a
// wrangler and the workerd it runs) once their owner, `npm start`'s script, is gone however it
// went, SIGKILL included, which no handler of its own can catch. It runs detached from the
// terminal and from its owner, checks twice a second, and exits when the groups are gone.
const [owner, ...groups] = process.argv.slice(2).map(Number);

const alive = (pid) => {
	try {
		process.kill(pid, 0);
		return true;
	} catch (error) {
		return error.code === "EPERM";
	}
};

const signal = (name) => {
	for (const group of groups) {
		try {
			process.kill(-group, name);
		} catch {}
	}
};

const timer = setInterval(() => {
	if (!groups.some((group) => alive(-group))) process.exit(0);
	if (alive(owner)) return;
	clearInterval(timer);
	signal("SIGTERM");
	// What has not stopped in three seconds is killed.
	setTimeout(() => {
		signal("SIGKILL");
		process.exit(0);
	}, 3_000);
}, 500);
