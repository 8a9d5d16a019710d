import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain ES module, without types.
import { deployProblems } from "../../scripts/deploy.mjs";

const exec = promisify(execFile);

describe("npm run deploy fails early", () => {
	it("refuses the shipped wrangler.toml, whose KV id is the placeholder, naming the command that makes one", async () => {
		const result = await exec(process.execPath, ["scripts/deploy.mjs"]).catch((error) => error as { code: number; stderr: string });
		expect(result).toMatchObject({ code: 1 });
		expect((result as { stderr: string }).stderr).toContain('error: the KV namespace REGISTRY has the placeholder id "00000000000000000000000000000000": run `npx wrangler kv namespace create REGISTRY`');
		expect((result as { stderr: string }).stderr).toContain("Nothing was deployed.");
	});

	it("finds nothing wrong once the id is a namespace's", () => {
		const toml = readFileSync("wrangler.toml", "utf8");
		expect(deployProblems(toml)).toHaveLength(1);
		expect(deployProblems(toml.replace('id = "00000000000000000000000000000000"', 'id = "0f2ac74b498b48028cb68387c421e279"'))).toEqual([]);
		expect(deployProblems(toml.replace('id = "00000000000000000000000000000000"', 'id = "<your id>"'))[0]).toContain('placeholder id "<your id>"');
	});
});
