#!/usr/bin/env node
// Serves the reference piece runtime (dev/reference-runtime, a development harness) in plain
// Node, without wrangler: `node scripts/serve-reference-runtime.mjs [--port N]` (default 8788;
// 0 picks a free port). It listens on 127.0.0.1 only and prints its run endpoint's URL on
// the first line. The runtime is a Worker-style module that uses web APIs only, so a small
// node:http ⇄ Request/Response adapter is all it needs; the conformance kit's tests and CI
// run against it.
//
// Environment: ALLOWED_SIGNERS (comma-separated did:keys; default: the DID of the identity
// that IDENTITY / OPERATOR_PASS / the default passphrase gives, as the scheduler and the
// conformance kit choose it), SLOW_PIECE_MS.
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
	...(env.SLOW_PIECE_MS ? { SLOW_PIECE_MS: env.SLOW_PIECE_MS } : {}),
};

const server = createServer(async (incoming, outgoing) => {
	try {
		const response = await runtime.fetch(await requestOf(incoming), runtimeEnv);
		const body = Buffer.from(await response.arrayBuffer());
		for (const [name, value] of response.headers) outgoing.appendHeader(name, value);
		outgoing.writeHead(response.status).end(body);
	} catch (error) {
		console.error(`[reference-runtime] ${error.stack ?? error}`);
		if (!outgoing.headersSent) outgoing.writeHead(500, { "content-type": "text/plain" });
		outgoing.end("internal error");
	}
});
server.listen(port, "127.0.0.1", () => {
	console.log(`reference runtime (development harness) on http://127.0.0.1:${server.address().port}/v1/run, allowing ${runtimeEnv.ALLOWED_SIGNERS || "no one"}`);
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.close(() => process.exit(0)));

/** The incoming request as a web Request; the body is read whole (a run request is small). */
async function requestOf(incoming) {
	const headers = new Headers();
	for (let i = 0; i < incoming.rawHeaders.length; i += 2) headers.append(incoming.rawHeaders[i], incoming.rawHeaders[i + 1]);
	const chunks = [];
	for await (const chunk of incoming) chunks.push(chunk);
	const hasBody = incoming.method !== "GET" && incoming.method !== "HEAD";
	return new Request(`http://${incoming.headers.host ?? "127.0.0.1"}${incoming.url}`, { method: incoming.method, headers, body: hasBody ? Buffer.concat(chunks) : undefined });
}

/** The DID of the identity the scheduler would sign with, from the same environment variables. */
async function signerDid() {
	const identityFile = join(outdir, "identity.mjs");
	buildSync({ entryPoints: [join(root, "src", "identity", "ed25519.ts")], outfile: identityFile, bundle: true, platform: "node", format: "esm", logLevel: "error" });
	const { decodePkcs8, identityFromPassphrase, identityFromPkcs8, DEFAULT_OPERATOR_PASS } = await import(pathToFileURL(identityFile).href);
	return (env.IDENTITY ? await identityFromPkcs8(decodePkcs8(env.IDENTITY)) : await identityFromPassphrase(env.OPERATOR_PASS || DEFAULT_OPERATOR_PASS)).did;
}
