// Which local TCP ports are free, and who holds the others: `npm start` checks its ports before
// it starts anything, so a port held by another program (or by an earlier system left behind)
// is named at once instead of surfacing as "Address already in use" half-way through.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { createServer } from "node:net";

/** Whether `port` on 127.0.0.1 can be listened on now. */
export function isFree(port) {
	return new Promise((resolve) => {
		const server = createServer();
		server.once("error", () => resolve(false));
		server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
	});
}

/**
 * Who listens on `port`: "pid 123 (node …/wrangler.js dev …)", or null when that cannot be
 * told (another user's process, no /proc and no lsof). Linux: /proc/net/tcp{,6} gives the
 * listening socket's inode, and the process holding it has that socket among its fds.
 */
export function holderOf(port) {
	const pid = pidFromProc(port) ?? pidFromLsof(port);
	if (!pid) return null;
	let command = "";
	try {
		command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
	} catch {
		try {
			command = execFileSync("ps", ["-o", "command=", "-p", String(pid)], { encoding: "utf8" }).trim();
		} catch {}
	}
	return `pid ${pid}${command ? ` (${command.length > 120 ? `${command.slice(0, 117)}…` : command})` : ""}`;
}

function pidFromProc(port) {
	const inodes = new Set();
	for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
		let text;
		try {
			text = readFileSync(table, "utf8");
		} catch {
			continue;
		}
		for (const line of text.split("\n").slice(1)) {
			const fields = line.trim().split(/\s+/);
			// local_address is ADDR:PORT in hex; state 0A is LISTEN; the inode is the tenth field.
			if (fields.length > 9 && fields[3] === "0A" && parseInt(fields[1].split(":")[1], 16) === port) inodes.add(fields[9]);
		}
	}
	if (!inodes.size) return null;
	for (const pid of safeList("/proc").filter((name) => /^\d+$/.test(name))) {
		for (const fd of safeList(`/proc/${pid}/fd`)) {
			try {
				const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
				if (match && inodes.has(match[1])) return Number(pid);
			} catch {}
		}
	}
	return null;
}

function pidFromLsof(port) {
	try {
		const out = execFileSync("lsof", ["-nP", "-t", `-iTCP:${port}`, "-sTCP:LISTEN"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
		return Number(out.split("\n")[0]) || null;
	} catch {
		return null;
	}
}

function safeList(dir) {
	try {
		return readdirSync(dir);
	} catch {
		return [];
	}
}
