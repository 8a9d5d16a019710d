import { newPieceId, newSpace } from "../helpers";

/** One hostile request body: what it is, its bytes, and the Content-Type it is sent with. */
export interface HostileBody {
	name: string;
	body: string | Uint8Array;
	contentType: string | null;
}

const CONTENT_TYPES: (string | null)[] = [
	"application/json",
	null, // the browser component's fetch: text/plain;charset=UTF-8
	"application/x-www-form-urlencoded",
	"multipart/form-data; boundary=x",
	"application/xml",
	"application/octet-stream",
];

/** Values that are not a valid space (did:key), whatever their type. */
const BAD_SPACES: unknown[] = [
	null, true, 0, -1, 1.5, 1e308, "", " ", [], {}, ["did:key:z6Mk"], { $ne: "" }, { toString: "did:key:z6Mk" },
	"did:web:example.com", "did:key:", "did:key:z", "did:key:6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
	"did:key:z6Mk0OIlaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2d", "did:key:z6Mk/../../etc/passwd1234567890123456789012345",
	`did:key:z${"1".repeat(121)}`, "DID:KEY:Z6MKHAXGBZDVOTDKL5257FAIZTIGIC2QTKLGPBNNEGTA2DOK", "did:key:z6Mk\u0000haXgBZDvotDkL5257faiztiGiC2QtKLGpbn",
	"did:key:z6Mk😀haXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta", " did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", "x".repeat(60_000),
	"__proto__", "<script>alert(1)</script>", "'; DROP TABLE pieces; --",
];

/** Values that are not a valid piece id, whatever their type. */
const BAD_PIECE_IDS: unknown[] = [
	null, false, 42, [], {}, ["fid1:x"], { id: "fid1:x" }, "", "fid1:", `fid1:${"a".repeat(42)}`, `fid1:${"a".repeat(44)}`,
	`fid1:${"a".repeat(42)}+`, `fid1:${"a".repeat(42)}/`, `fid1:${"a".repeat(42)}=`, `FID1:${"a".repeat(43)}`, `fid2:${"a".repeat(43)}`,
	`baed${"a".repeat(54)}`, `baed${"a".repeat(56)}`, `baed${"a".repeat(54)}1`, `of:of:baed${"a".repeat(55)}`, `xx:baed${"a".repeat(55)}`,
	// Legacy CIDs (no longer run) and kinded ids (values, not pieces), in every spelling.
	`baed${"a".repeat(55)}`, `of:baed${"a".repeat(55)}`, `computed:fid1:${"a".repeat(43)}`, `data:fid1:${"a".repeat(43)}`, `of:of:fid1:${"a".repeat(43)}`, `of:computed:fid1:${"a".repeat(43)}`,
	`fid1:${"a".repeat(42)}\u0000`, `fid1:${"é".repeat(43)}`, "x".repeat(60_000), "constructor", "../../../../etc/passwd",
];

/** Values that are not a valid integration name, whatever their type. */
const BAD_INTEGRATIONS: unknown[] = [
	null, true, 7, [], {}, ["gmail"], { name: "gmail" }, "", " ", "\t\n", "x".repeat(65), "😀".repeat(65), "a\u0000b", "a\u0007b", "a\u001bb",
	"a\u200bb", "a\u202eb", "a\u2028b", "a\u2029b", "a\u007fb", "x".repeat(60_000),
	// Lone surrogates: JSON.stringify writes them as \ud800-style escapes, which parse back to them.
	"a\ud800b", "\udfff", "gmail\ud83d", "\ude00gmail",
];

/** JSON texts (or not) that are not a registration object. */
const BAD_TEXTS: string[] = [
	"", " ", "\n", "null", "true", "0", "-1", '"space"', "[]", "[{}]", "{", "}", "{]", '{"space":', '{"space" "x"}', "{'space':'x'}", "{space: 1}",
	'{"space":1,}', "NaN", "Infinity", "undefined", "/* c */ {}", "{} {}", '{"a":1}{"b":2}', "\u0000", "\uFEFF", "<xml/>", "space=a&pieceId=b&integration=c",
	"--x\r\nContent-Disposition: form-data; name=\"space\"\r\n\r\nx\r\n--x--", "[".repeat(5_000) + "]".repeat(5_000), '{"a":'.repeat(2_000) + "1" + "}".repeat(2_000),
	JSON.stringify({ __proto__: null }), '{"__proto__":{"space":"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"}}',
	'{"constructor":{"prototype":{"integration":"x"}}}', JSON.stringify({ nested: { space: newSpace(), pieceId: newPieceId(), integration: "x" } }),
	JSON.stringify([{ space: newSpace(), pieceId: newPieceId(), integration: "x" }]),
];

/** Byte sequences that are not UTF-8, wrapped around an otherwise valid registration. */
function invalidUtf8(): HostileBody[] {
	const valid = new TextEncoder().encode(JSON.stringify({ space: newSpace(), pieceId: newPieceId(), integration: "gmail" }));
	const bad = [[0xff], [0xc0, 0xaf], [0xe0, 0x80, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0x80], [0xc3]];
	return bad.flatMap((bytes, i) =>
		[null, "application/json"].map((contentType) => {
			const body = new Uint8Array(valid.length + bytes.length);
			body.set(valid.subarray(0, valid.length - 2));
			body.set(bytes, valid.length - 2);
			body.set(valid.subarray(valid.length - 2), valid.length - 2 + bytes.length);
			return { name: `invalid UTF-8 #${i} (${contentType ?? "no type"})`, body, contentType };
		}),
	);
}

function describe(value: unknown): string {
	const text = typeof value === "string" ? JSON.stringify(value) : String(JSON.stringify(value));
	return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}

/**
 * The hostile registration corpus: every field replaced by every bad value of its kind, each
 * field and pair of fields missing, prototype-pollution keys, nested and non-object JSON,
 * broken JSON, invalid UTF-8 and oversized bodies, spread over many content types. Each is
 * invalid by construction, so none may be stored.
 */
export function hostileRegistrations(): HostileBody[] {
	const corpus: HostileBody[] = [];
	const valid = () => ({ space: newSpace(), pieceId: newPieceId(), integration: "gmail" });
	const type = (i: number) => CONTENT_TYPES[i % CONTENT_TYPES.length]!;
	const fields: [keyof ReturnType<typeof valid>, unknown[]][] = [
		["space", BAD_SPACES],
		["pieceId", BAD_PIECE_IDS],
		["integration", BAD_INTEGRATIONS],
	];
	let i = 0;
	for (const [field, values] of fields) {
		for (const value of values) {
			for (const contentType of [type(i++), type(i++), type(i++)]) {
				corpus.push({ name: `${field} = ${describe(value)} (${contentType ?? "no type"})`, body: JSON.stringify({ ...valid(), [field]: value }), contentType });
			}
		}
	}
	for (const missing of [["space"], ["pieceId"], ["integration"], ["space", "pieceId"], ["space", "integration"], ["pieceId", "integration"], ["space", "pieceId", "integration"]]) {
		const body: Record<string, unknown> = valid();
		for (const field of missing) delete body[field];
		for (const contentType of CONTENT_TYPES) corpus.push({ name: `missing ${missing.join("+")} (${contentType ?? "no type"})`, body: JSON.stringify(body), contentType });
	}
	for (const key of ["__proto__", "constructor", "prototype"]) {
		const { space, pieceId, integration } = valid();
		// The valid fields only under a polluting key: the top level lacks them.
		corpus.push({ name: `fields hidden under ${key}`, body: `{"${key}":{"space":"${space}","pieceId":"${pieceId}","integration":"${integration}"}}`, contentType: null });
		corpus.push({ name: `${key} beside a bad field`, body: `{"${key}":{"isAdmin":true},"space":"did:web:x","pieceId":"${pieceId}","integration":"${integration}"}`, contentType: "application/json" });
	}
	BAD_TEXTS.forEach((text, j) => {
		for (const contentType of [type(j), null]) corpus.push({ name: `text ${describe(text)} (${contentType ?? "no type"})`, body: text, contentType });
	});
	corpus.push(...invalidUtf8());
	const huge = JSON.stringify({ ...valid(), padding: "x".repeat(70_000) });
	for (const contentType of CONTENT_TYPES) corpus.push({ name: `over 64 KB (${contentType ?? "no type"})`, body: huge, contentType });
	return corpus;
}

/** Path segments that are not a valid space or piece id (raw, as they appear in a URL). */
export const HOSTILE_SEGMENTS: string[] = [
	"did:web:example.com", "did:key:", "did:key:z0OIl", "%", "%ZZ", "%E0%A4%A", "%00", "%2F", "..", ".", "fid1:short", "of:", "x".repeat(600),
	"%F0%9F%98%80", "did%3Akey%3Az6Mk", "%3Cscript%3E", "__proto__", "constructor", "null", "undefined", "%0A", "%20",
];
