import type * as z from "zod/mini";
import { firstIssue, pieceRefSchema } from "../schema";
import type { PieceRef } from "../registry/entry";
import { readUpTo } from "../util/stream";
import { StatusError } from "./errors";

/** Request bodies above 64 KB are refused; a registration is about 150 bytes. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Reads a JSON body whatever its Content-Type: the browser component posts JSON as
 * `text/plain` (a CORS-simple request). Stops reading past `maxBytes` (MAX_BODY_BYTES unless a
 * route allows more; 413) so a huge body costs no memory, and refuses bytes that are not UTF-8
 * or not JSON (400).
 */
export async function readJson(request: Request, maxBytes = MAX_BODY_BYTES): Promise<unknown> {
	const declared = Number(request.headers.get("content-length") ?? "0");
	if (declared > maxBytes) throw tooLarge(maxBytes);
	const { bytes, truncated } = await readUpTo(request.body, maxBytes);
	if (truncated) throw tooLarge(maxBytes);
	let text: string;
	try {
		text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
	} catch {
		throw new StatusError(400, "body must be UTF-8 text");
	}
	if (!text.trim()) throw new StatusError(400, "body must be a JSON object");
	try {
		return JSON.parse(text);
	} catch {
		throw new StatusError(400, "body is not valid JSON");
	}
}

/** Validates input against a schema, or throws a 400 that names the first problem. */
export function parse<S extends z.ZodMiniType>(schema: S, input: unknown): z.output<S> {
	const result = schema.safeParse(input);
	if (!result.success) throw new StatusError(400, firstIssue(result.error, input));
	return result.data;
}

/** The piece named by the route's `:space/:pieceId`, decoded and validated. */
export function pieceParams(params: Record<string, string | undefined>): PieceRef {
	try {
		return parse(pieceRefSchema, { space: decode(params.space), pieceId: decode(params.pieceId) });
	} catch (error) {
		if (error instanceof URIError) throw new StatusError(400, "malformed percent-encoding in the path");
		throw error;
	}
}

function decode(value: string | undefined): string | undefined {
	return value === undefined ? undefined : decodeURIComponent(value);
}

function tooLarge(maxBytes: number): StatusError {
	return new StatusError(413, `body too large: at most ${maxBytes} bytes`);
}
