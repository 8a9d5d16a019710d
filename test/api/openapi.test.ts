import { describe, expect, it } from "vitest";
import { api } from "../../src/api";
import { openApiDocument } from "../../src/api/openapi";
import { T0, admin, call, eventually, fireTick, newPieceId, newSpace, piecePath, registerPiece, seedPiece } from "../helpers";

type Schema = Record<string, unknown>;
const doc = openApiDocument as unknown as { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: Schema }> }> }>>; components: { schemas: Record<string, Schema> } };

/**
 * The problems of `value` against a schema of the subset the document uses ($ref, type,
 * properties, required, items, enum, const, oneOf). Objects are strict: an answer field the
 * document does not declare is a problem, so the document cannot fall behind the code.
 */
function problems(value: unknown, schema: Schema, at = "$"): string[] {
	if (schema.$ref) return problems(value, doc.components.schemas[String(schema.$ref).split("/").pop()!]!, at);
	if (schema.oneOf) {
		const matching = (schema.oneOf as Schema[]).filter((option) => problems(value, option, at).length === 0);
		return matching.length === 1 ? [] : [`${at}: matches ${matching.length} of oneOf`];
	}
	if ("const" in schema && value !== schema.const) return [`${at}: expected ${JSON.stringify(schema.const)}`];
	if (schema.enum && !(schema.enum as unknown[]).includes(value)) return [`${at}: ${JSON.stringify(value)} not in enum`];
	if (schema.type) {
		const types = ([] as string[]).concat(schema.type as string | string[]);
		const actual = value === null ? "null" : Array.isArray(value) ? "array" : Number.isInteger(value) ? "integer" : typeof value;
		if (!types.includes(actual) && !(actual === "integer" && types.includes("number"))) return [`${at}: ${actual}, expected ${types.join("|")}`];
	}
	const out: string[] = [];
	if (Array.isArray(value) && schema.items) value.forEach((item, i) => out.push(...problems(item, schema.items as Schema, `${at}[${i}]`)));
	if (value && typeof value === "object" && !Array.isArray(value) && schema.properties) {
		const properties = schema.properties as Record<string, Schema>;
		for (const name of (schema.required as string[] | undefined) ?? []) if (!(name in value)) out.push(`${at}.${name}: missing`);
		for (const [name, field] of Object.entries(value)) {
			if (!properties[name]) out.push(`${at}.${name}: not in the document`);
			else out.push(...problems(field, properties[name], `${at}.${name}`));
		}
	}
	return out;
}

/** Checks a real answer against the document's response for that operation and status. */
async function expectDocumented(response: Response, path: string, method: string) {
	const operation = doc.paths[path]?.[method];
	expect(operation, `${method} ${path} is documented`).toBeDefined();
	const documented = operation!.responses[String(response.status)];
	expect(documented, `${method} ${path} documents status ${response.status}`).toBeDefined();
	const schema = documented!.content?.["application/json"]?.schema;
	if (schema) expect(problems(await response.json(), schema)).toEqual([]);
}

describe("GET /api/openapi.json", () => {
	it("serves the document", async () => {
		const response = await call("/api/openapi.json");
		expect(response.status).toBe(200);
		// Its server is BASE_PATH (empty here: the root), where every path is answered.
		expect(await response.json()).toEqual({ ...JSON.parse(JSON.stringify(openApiDocument)), servers: [{ url: "/" }] });
	});

	it("documents every route, and every documented operation is a route", () => {
		const routes = new Set(api.routes.filter(([method]) => method !== "ALL").map(([method, , , path]) => `${method} ${String(path).replace(/:(\w+)/g, "{$1}")}`));
		const documented = new Set(Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).filter((key) => key !== "parameters").map((method) => `${method.toUpperCase()} ${path}`)));
		expect(documented).toEqual(routes);
	});

	it("the validator finds undocumented and missing fields", () => {
		const error = { $ref: "#/components/schemas/Error" };
		expect(problems({ success: false, error: "x" }, error)).toEqual([]);
		expect(problems({ success: false, error: "x", extra: 1 }, error)).toEqual(["$.extra: not in the document"]);
		expect(problems({ success: false }, error)).toEqual(["$.error: missing"]);
		expect(problems({ success: true, error: 3 }, error)).toEqual(["$.success: expected false", "$.error: integer, expected string"]);
	});
});

describe("real answers match the document", () => {
	const bg = "/api/integrations/bg";
	const one = "/api/integrations/bg/{space}/{pieceId}";

	it("health, stats, the list", async () => {
		await seedPiece();
		await fireTick(T0);
		await expectDocumented(await call("/api/health"), "/api/health", "get");
		await expectDocumented(await admin("/api/stats"), "/api/stats", "get");
		await expectDocumented(await call("/api/stats"), "/api/stats", "get");
		await expectDocumented(await admin(`${bg}?limit=2`), bg, "get");
		await expectDocumented(await admin(`${bg}?limit=0`), bg, "get");
	});

	it("registration, one piece with its runs, patch, run-now, delete, and their errors", async () => {
		const space = newSpace();
		const pieceId = newPieceId();
		await expectDocumented(await registerPiece({ space, pieceId, integration: "fail" }), bg, "post");
		await expectDocumented(await call(bg, { method: "POST", body: "{}", headers: { "content-type": "application/json" } }), bg, "post");
		const path = piecePath(space, pieceId);
		// The registration's run fails once: the entry then has a history.
		await eventually(async () => ((await (await call(path)).json<{ failures: number }>()).failures === 1 ? true : undefined));
		await expectDocumented(await call(path), one, "get");
		await expectDocumented(await call(piecePath(space, newPieceId())), one, "get");
		await new Promise((resolve) => setTimeout(resolve, 1_000));
		await expectDocumented(await admin(path, { method: "PATCH", body: JSON.stringify({ enabled: false }) }), one, "patch");
		await expectDocumented(await admin(`${path}/run`, { method: "POST" }), `${one}/run`, "post");
		await new Promise((resolve) => setTimeout(resolve, 1_000));
		await admin(path, { method: "PATCH", body: JSON.stringify({ enabled: true }) });
		await expectDocumented(await admin(`${path}/run`, { method: "POST" }), `${one}/run`, "post");
		await expectDocumented(await admin(path, { method: "DELETE" }), one, "delete");
		await expectDocumented(await admin(path, { method: "DELETE" }), one, "delete");
	});
});
