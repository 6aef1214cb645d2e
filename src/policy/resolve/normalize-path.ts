/**
 * Request-target path normalisation (the path the HTTP policy judges, for the proxy and `policy
 * trace` alike), as Cilium configures Envoy when `http-normalize-path` is on
 * (the default): Cilium `pkg/envoy/server.go` sets the HttpConnectionManager's `normalize_path`,
 * `merge_slashes` and `path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT`. Envoy applies them
 * in this order (`ConnectionManagerUtility::maybeNormalizePath`), and so does this module:
 *
 *   1. escaped slashes: `%2F` / `%5C` (either case) are unescaped to `/` and `\`; if any were
 *      found the client is redirected (307) to the fully normalised path instead of being
 *      forwarded, so the policy only ever judges, and the server only ever receives, a path
 *      without encoded separators;
 *   2. RFC 3986 normalisation (Envoy's fork of Chromium's `CanonicalizePath`): `\` becomes `/`;
 *      percent-encoded unreserved characters (ALPHA DIGIT `-` `.` `_` `~`, RFC 3986 §2.3) are
 *      decoded, so `%2e` is a dot; other escapes are kept byte for byte (hex case included);
 *      characters that may not appear in a path are percent-encoded; dot-segments are removed
 *      (§5.2.4; `..` never climbs above the root); an encoded NUL (`%00`) fails;
 *   3. runs of `/` are merged into one.
 *
 * Deliberate difference: a `%` not followed by two hex digits fails normalisation (400) where
 * Chromium copies it through; a proxy that judges paths should not guess how the server will
 * read a malformed escape. Only the path is touched: the query (from the first `?`) is kept as is.
 *
 * Runs in time linear in the target's length.
 */

export type NormalizedTarget =
  /** Forward `target` (normalised path + original query); `changed` when it differs from the input. */
  | { kind: 'forward'; target: string; changed: boolean }
  /** Escaped slashes were found: answer 307 with `Location: location` (normalised path + query). */
  | { kind: 'redirect'; location: string }
  /** Not normalisable: answer 400. */
  | { kind: 'reject'; reason: string };

/** RFC 3986 §2.3 unreserved characters: percent-encoding them is equivalent to writing them. */
function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2d || // -
    c === 0x2e || // .
    c === 0x5f || // _
    c === 0x7e // ~
  );
}

/**
 * Characters Chromium's path canonicaliser percent-encodes (its `kPathCharLookup` ESCAPE entries):
 * controls, space, `"`, `<`, `>`, `^`, `` ` ``, `{`, `|`, `}`, DEL and every non-ASCII byte.
 */
function mustEscape(c: number): boolean {
  return c <= 0x20 || c >= 0x7f || c === 0x22 || c === 0x3c || c === 0x3e || c === 0x5e || c === 0x60 || c === 0x7b || c === 0x7c || c === 0x7d;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

const HEX = '0123456789ABCDEF';
const UTF8 = new TextEncoder();

function percentEncode(ch: string): string {
  const code = ch.charCodeAt(0);
  // Node hands the request-target over as latin1, one char per byte; anything wider is UTF-8.
  const bytes = code <= 0xff ? [code] : [...UTF8.encode(ch)];
  return bytes.map((b) => `%${HEX[b >> 4]}${HEX[b & 15]}`).join('');
}

/** Step 1: `%2F` → `/`, `%5C` → `\`. */
function unescapeSlashes(path: string): { path: string; found: boolean } {
  if (!path.includes('%')) return { path, found: false };
  const out = path.replace(/%(2f|5c)/gi, (m) => (m[2] === 'f' || m[2] === 'F' ? '/' : '\\'));
  return { path: out, found: out !== path };
}

/**
 * Step 2a: one pass over the path that decodes unreserved escapes, turns `\` into `/`, encodes
 * what must be encoded and validates the remaining escapes. Segment structure is untouched.
 */
function canonicalChars(path: string): { path: string } | { error: string } {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hi = i + 2 < path.length ? hexValue(path.charCodeAt(i + 1)) : -1;
      const lo = hi >= 0 ? hexValue(path.charCodeAt(i + 2)) : -1;
      if (lo < 0) return { error: `invalid percent-encoding at offset ${i}` };
      const byte = hi * 16 + lo;
      if (byte === 0) return { error: 'encoded NUL (%00) in path' };
      out += isUnreserved(byte) ? String.fromCharCode(byte) : path.slice(i, i + 3);
      i += 2;
    } else if (c === 0x5c /* \ */) {
      out += '/';
    } else if (mustEscape(c)) {
      if (c === 0) return { error: 'NUL in path' };
      out += percentEncode(path[i] as string);
    } else {
      out += path[i];
    }
  }
  return { path: out };
}

/** Step 2b: RFC 3986 §5.2.4 remove_dot_segments for an absolute path (starts with `/`). */
export function removeDotSegments(path: string): string {
  const segments = path.slice(1).split('/');
  const out: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i] as string;
    const last = i === segments.length - 1;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      // "/a/b/.." names the directory "/a/": keep the trailing slash.
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

/** Step 3: Envoy's `merge_slashes` (path only). */
export function mergeSlashes(path: string): string {
  return path.includes('//') ? path.replace(/\/{2,}/g, '/') : path;
}

/**
 * True when normalisation cannot change `path`: no escape, backslash or character to encode, no
 * empty segment and no segment starting with a dot. The common case takes this one pass only.
 */
function isCanonical(path: string): boolean {
  let prev = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 || c === 0x5c || mustEscape(c)) return false;
    if (prev === 0x2f && (c === 0x2f || c === 0x2e)) return false;
    prev = c;
  }
  return true;
}

/**
 * Normalises an origin-form request-target (`/path?query`). `target` must start with `/`; the
 * asterisk-form and anything else is returned unchanged.
 */
export function normalizeRequestTarget(target: string): NormalizedTarget {
  if (!target.startsWith('/')) return { kind: 'forward', target, changed: false };
  const q = target.indexOf('?');
  const rawPath = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? '' : target.slice(q);
  if (isCanonical(rawPath)) return { kind: 'forward', target, changed: false };

  const slashes = unescapeSlashes(rawPath);
  const chars = canonicalChars(slashes.path);
  if ('error' in chars) return { kind: 'reject', reason: `path normalization failed: ${chars.error}` };
  const path = mergeSlashes(removeDotSegments(chars.path));

  if (slashes.found) return { kind: 'redirect', location: `${path}${query}` };
  const normalized = `${path}${query}`;
  return { kind: 'forward', target: normalized, changed: normalized !== target };
}
