import { env } from "cloudflare:workers";
import { call } from "./helpers";

/** A report request the reference runtime sent, as the test relay captured it. */
export interface CapturedReport {
	url: string;
	headers: Record<string, string>;
	body: string;
}

const relay = () => (env as unknown as { REPORT_RELAY: Fetcher }).REPORT_RELAY;

/** This test file's mailbox at the relay: test files run at once, and must not take each other's reports. */
const BOX = crypto.randomUUID();

/** The Worker's env for protocol 2 tests: its dispatches name this file's mailbox as REPORT_URL. */
export const V2_ENV = { ...env, RUNTIME_PROTOCOL: "2", REPORT_URL: `https://scheduler.test/api/runtime/reports?box=${BOX}` };

/** Takes the report requests the reference runtime has sent to this file's mailbox since the last call. */
export async function takeReports(): Promise<CapturedReport[]> {
	return (await relay().fetch(`https://relay.internal/__outbox?box=${BOX}`)).json<CapturedReport[]>();
}

/** Waits until the reference runtime has sent reports for at least `runs` runs, and takes them. */
export async function awaitReports(runs: number, timeoutMs = 10_000): Promise<CapturedReport[]> {
	const taken: CapturedReport[] = [];
	const deadline = Date.now() + timeoutMs;
	while (count(taken) < runs) {
		if (Date.now() > deadline) throw new Error(`reports for ${count(taken)} of ${runs} runs arrived in time`);
		taken.push(...(await takeReports()));
		await new Promise((resolve) => setTimeout(resolve, 25));
	}
	return taken;
}

function count(requests: CapturedReport[]): number {
	return requests.reduce((n, r) => n + (JSON.parse(r.body) as { reports: unknown[] }).reports.length, 0);
}

/** Hands a captured report request to the Worker under test, unchanged. */
export function deliver(report: CapturedReport): Promise<Response> {
	return call(new URL(report.url).pathname, { method: "POST", headers: report.headers, body: report.body });
}

/** Delivers every captured report request; returns the Worker's answers. */
export async function deliverAll(reports: CapturedReport[]): Promise<{ status: number; body: { results?: { runId: string; status: string }[]; error?: string } }[]> {
	return Promise.all(reports.map(async (report) => {
		const response = await deliver(report);
		return { status: response.status, body: await response.json() };
	}));
}
