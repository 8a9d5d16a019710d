/**
 * BENCHMARK HARNESS ONLY: an instant piece runtime for `npm run bench`. It answers every run
 * request at once with 200 `{"ok":true}` and `bg-protocol: 1` (so the scheduler classifies
 * it as a success) and does not verify signatures: the bench measures the scheduler, not the
 * runtime. It records how many requests arrive in each wall-clock second, so the bench can
 * report the runtime's peak and mean request rate.
 *   POST *           a run: answered at once, counted
 *   GET  /stats      {total, first, last, perSecond: {[unixSecond]: count}}
 *   POST /reset      forget everything counted so far
 */

let perSecond = new Map<number, number>();
let total = 0;
let first = 0;
let last = 0;

function reset(): void {
	perSecond = new Map();
	total = 0;
	first = 0;
	last = 0;
}

export default {
	async fetch(request: Request): Promise<Response> {
		const url = new URL(request.url);
		if (request.method === "GET" && url.pathname === "/stats") {
			return Response.json({ total, first, last, perSecond: Object.fromEntries(perSecond) });
		}
		if (request.method === "POST" && url.pathname === "/reset") {
			reset();
			return Response.json({ ok: true });
		}
		if (request.method !== "POST") return new Response("method not allowed", { status: 405 });
		// workerd's clock reads the time of the last I/O event: here, this request's arrival.
		const now = Date.now();
		const second = Math.floor(now / 1000);
		perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
		total++;
		if (!first) first = now;
		last = now;
		// Drain the body as a real runtime would read it.
		await request.arrayBuffer();
		return new Response('{"ok":true}', { status: 200, headers: { "content-type": "application/json", "bg-protocol": "1" } });
	},
};
