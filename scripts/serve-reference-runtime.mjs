#!/usr/bin/env node
// Serves the reference piece runtime (dev/reference-runtime, a development harness) in plain
// Node, without wrangler: `node scripts/serve-reference-runtime.mjs [--port N]` (default 8788;
// 0 picks a free port). It listens on 127.0.0.1 only and prints, on the first line, its
// protocol 1 endpoint's URL (…/v1/run), then its protocol 2 endpoint's (…/v2/runs) and the
// did:key its protocol 2 reports are signed by. The runtime is a Worker-style module that uses
// web APIs only, so a small node:http ⇄ Request/Response adapter and an ExecutionContext whose
// waitUntil keeps background work going are all it needs; the conformance kit's tests and CI
// run against it. Its outbound requests (protocol 2 reports to a dispatch's reportTo) are
// Node's own fetch, so they reach whatever the dispatch names, 127.0.0.1 included, with no
// outbound service in between as under Miniflare.
//
// Environment: ALLOWED_SIGNERS (comma-separated did:keys; default: the DID of the identity
// that IDENTITY / OPERATOR_PASS / the default passphrase gives, as the scheduler and the
// conformance kit choose it), RUNTIME_PASS (the report key's passphrase; default the
// runtime's own), SLOW_PIECE_MS, RUN_LIMIT_MS.
import { buildSync } from "esbuild";
import { createServer } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outdir = join(root, ".wrangler", "serve-reference-runtime");
const env = process.env;

let port;
try {
	const { values } = parseArgs({ options: { port: { type: "string", default: "8788" } } });
	port = Number(values.port);
	if (!/^\d+$/.test(values.port) || port > 65535) throw new Error(`--port must be a port number (0 for any free one), not "${values.port}"`);
} catch (error) {
	console.error(`error: ${error.message}`);
	process.exit(2);
}

// Bundled as for workerd (platform neutral), so this is the same code the tests bind as RUNTIME.
const runtimeFile = join(outdir, "runtime.mjs");
buildSync({ entryPoints: [join(root, "dev", "reference-runtime", "index.ts")], outfile: runtimeFile, bundle: true, format: "esm", platform: "neutral", logLevel: "error" });
const { default: runtime } = await import(pathToFileURL(runtimeFile).href);

const runtimeEnv = {
	ALLOWED_SIGNERS: env.ALLOWED_SIGNERS ?? (await signerDid()),
	...pick(["RUNTIME_PASS", "SLOW_PIECE_MS", "RUN_LIMIT_MS"]),
};

/**
 * Work the runtime goes on with after its answer (protocol 2 runs and their reports), as
 * workerd keeps an invocation alive for ctx.waitUntil. Node would keep pending timers and
 * sockets alive anyway; holding the promises here is what lets a failure be logged rather
 * than become an unhandled rejection, and lets shutdown wait for them (bounded).
 */
const background = new Set();
const ctx = {
	waitUntil(promise) {
		const held = Promise.resolve(promise)
			.catch((error) => console.error(`[reference-runtime] background work failed: ${error?.stack ?? error}`))
			.finally(() => background.delete(held));
		background.add(held);
	},
	passThroughOnException() {},
	props: {},
};
/** How long shutdown waits for background work: reports of runs already done go out first. */
const SHUTDOWN_GRACE_MS = 2_000;

const server = createServer(async (incoming, outgoing) => {
	try {
		const response = await runtime.fetch(await requestOf(incoming), runtimeEnv, ctx);
		const body = Buffer.from(await response.arrayBuffer());
		for (const [name, value] of response.headers) outgoing.appendHeader(name, value);
		outgoing.writeHead(response.status).end(body);
	} catch (error) {
		console.error(`[reference-runtime] ${error.stack ?? error}`);
		if (!outgoing.headersSent) outgoing.writeHead(500, { "content-type": "text/plain" });
		outgoing.end("internal error");
	}
});
server.listen(port, "127.0.0.1", async () => {
	const base = `http://127.0.0.1:${server.address().port}`;
	// The report signer, from the runtime itself (its GET / names it), so it is the key it really uses.
	const { reportSigner } = await (await runtime.fetch(new Request(`${base}/`), runtimeEnv, ctx)).json();
	console.log(`reference runtime (development harness) on ${base}/v1/run and ${base}/v2/runs, allowing ${runtimeEnv.ALLOWED_SIGNERS || "no one"}, reports signed by ${reportSigner}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
	process.on(signal, () => {
		server.close();
		server.closeAllConnections();
		const grace = new Promise((resolve) => setTimeout(resolve, SHUTDOWN_GRACE_MS).unref());
		Promise.race([Promise.all(background), grace]).then(() => process.exit(0));
	});
}

/** The incoming request as a web Request; the body is read whole (a run request is small). */
async function requestOf(incoming) {
	const headers = new Headers();
	for (let i = 0; i < incoming.rawHeaders.length; i += 2) headers.append(incoming.rawHeaders[i], incoming.rawHeaders[i + 1]);
	const chunks = [];
	for await (const chunk of incoming) chunks.push(chunk);
	const hasBody = incoming.method !== "GET" && incoming.method !== "HEAD";
	return new Request(`http://${incoming.headers.host ?? "127.0.0.1"}${incoming.url}`, { method: incoming.method, headers, body: hasBody ? Buffer.concat(chunks) : undefined });
}

/** The variables among `names` that are set, as an object. */
function pick(names) {
	return Object.fromEntries(names.filter((name) => env[name]).map((name) => [name, env[name]]));
}

/** The DID of the identity the scheduler would sign with, from the same environment variables. */
async function signerDid() {
	const identityFile = join(outdir, "identity.mjs");
	buildSync({ entryPoints: [join(root, "src", "identity", "ed25519.ts")], outfile: identityFile, bundle: true, platform: "node", format: "esm", logLevel: "error" });
	const { decodePkcs8, identityFromPassphrase, identityFromPkcs8, DEFAULT_OPERATOR_PASS } = await import(pathToFileURL(identityFile).href);
	return (env.IDENTITY ? await identityFromPkcs8(decodePkcs8(env.IDENTITY)) : await identityFromPassphrase(env.OPERATOR_PASS || DEFAULT_OPERATOR_PASS)).did;
}
