#!/usr/bin/env node
// `npm run conformance -- --url <runtime endpoint>`: bundles the runtime conformance kit
// (conformance/) with esbuild, then runs it.
import { buildSync } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outfile = join(root, ".wrangler", "conformance", "conformance.mjs");
buildSync({ entryPoints: [join(root, "conformance", "main.ts")], outfile, bundle: true, platform: "node", format: "esm", target: "node20", logLevel: "error" });
const { main } = await import(pathToFileURL(outfile).href);
process.exitCode = await main(process.argv.slice(2));
