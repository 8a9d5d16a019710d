// Types `exports` from `cloudflare:workers` (and `ctx.exports`) with this Worker's own handlers.
declare namespace Cloudflare {
	interface GlobalProps {
		mainModule: typeof import("./index");
	}
}
