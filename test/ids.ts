/**
 * Valid ids and times for tests, with no bindings: usable inside workerd and in plain Node
 * (the pure policy tests in test/policy run there).
 */
const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

let counter = 0;

/** A fresh, valid space DID (`did:key:z6Mk…`, 48 base58 characters), unique per call. */
export function newSpace(): string {
	return `did:key:z6Mk${encode(++counter, BASE58, 44)}`;
}

/** A fresh, valid `fid1:` piece id, unique per call. */
export function newPieceId(): string {
	return `fid1:${encode(++counter + Date.now(), BASE64URL, 43)}`;
}

/** A valid legacy piece id (`baed…`, 59 base32 characters). */
export function newLegacyPieceId(): string {
	return `baed${encode(++counter + Date.now(), "abcdefghijklmnopqrstuvwxyz234567", 55)}`;
}

function encode(n: number, alphabet: string, length: number): string {
	let out = "";
	let x = n;
	for (let i = 0; i < length; i++) {
		out += alphabet[(x + i * 7) % alphabet.length];
		x = Math.floor(x / alphabet.length) + (i === 0 ? n % 97 : 0);
	}
	return out;
}

/** A minute boundary well in the future of any test data, for tick times. */
export const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);

