import { expect } from "vitest";
import type { PieceEntry } from "../../src/registry/entry";
import { admin, call, piecePath } from "../helpers";

/** What the API answers for one piece (the entry plus `enabled`). */
export type Entry = PieceEntry & { enabled: boolean };
/** A piece as the admin list shows it. */
export interface Listed {
	space: string;
	pieceId: string;
	integration: string;
	status: string;
	createdAt: number;
	updatedAt: number;
	disabledAt: number;
	lastRun: number;
	failures: number;
	nextRunAt: number;
	enabled: boolean;
}
/** One page of the admin list. */
export interface ListPage {
	success: boolean;
	pieces: Listed[];
	cursor: string | null;
	complete: boolean;
}
/** The API's answer to a write (register, patch, delete, run-now) or an error. */
export interface Outcome {
	success: boolean;
	message?: string;
	error?: string;
	runId?: string;
	piece?: Entry;
}

/** The registration route, which is also the admin list. */
export const LIST = "/api/integrations/bg";

/** Asserts a JSON content type and parses the body as `T`. */
export async function read<T>(response: Response): Promise<T> {
	expect(response.headers.get("content-type") ?? "").toMatch(/^application\/json/);
	return (await response.json()) as T;
}

/** One piece through the public GET route, asserting 200. */
export async function getEntry(space: string, pieceId: string): Promise<Entry> {
	const response = await call(piecePath(space, pieceId));
	expect(response.status).toBe(200);
	return read<Entry>(response);
}

/** One page of the admin list for a query string, asserting 200 and `success`. */
export async function list(query: string): Promise<ListPage> {
	const response = await admin(`${LIST}?${query}`);
	expect(response.status, query).toBe(200);
	const page = await read<ListPage>(response);
	expect(page.success).toBe(true);
	return page;
}

/** Every piece of one space, from the admin list. */
export async function listSpace(space: string): Promise<Listed[]> {
	const response = await admin(`${LIST}?space=${encodeURIComponent(space)}&limit=1000`);
	expect(response.status).toBe(200);
	const page = await read<ListPage>(response);
	expect(page.complete).toBe(true);
	return page.pieces;
}

/** Every piece in the registry, following the cursor to the end. */
export async function listAll(): Promise<Listed[]> {
	const pieces: Listed[] = [];
	let cursor: string | null = null;
	do {
		const response = await admin(`${LIST}?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
		expect(response.status).toBe(200);
		const page: ListPage = await read<ListPage>(response);
		pieces.push(...page.pieces);
		cursor = page.cursor;
	} while (cursor);
	return pieces;
}

/** Waits `ms` milliseconds. */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
