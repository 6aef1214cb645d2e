/**
 * Header hygiene on both legs. Hop-by-hop headers describe one connection and are never forwarded
 * (RFC 9110 §7.6.1): the fixed set plus every name listed in `Connection`. Order, case and repeated
 * fields of everything else are kept (`rawHeaders`, flat `[name, value, …]`).
 *
 * These run on every request and response: a list with nothing to remove is returned as it is
 * (no copy, no re-serialisation), and no Set is allocated for a message without `Connection`.
 */

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection']);

const NO_TOKENS: ReadonlySet<string> = new Set<string>();

function isHopByHop(lower: string, listed: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || (listed.size > 0 && listed.has(lower));
}

function textOf(v: string | Buffer): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/** `name` is `Connection`, any case, without lower-casing every field name to find out. */
function isConnectionName(name: string): boolean {
  return name.length === 10 && name.toLowerCase() === 'connection';
}

/** Names listed in the `Connection` header(s): they are hop-by-hop too. Empty (shared, read-only) when there is none. */
export function connectionTokens(raw: ReadonlyArray<string | Buffer>): ReadonlySet<string> {
  let tokens: Set<string> | null = null;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!isConnectionName(textOf(raw[i] as string | Buffer))) continue;
    for (const t of textOf(raw[i + 1] as string | Buffer).split(',')) {
      const token = t.trim().toLowerCase();
      if (token) (tokens ??= new Set()).add(token);
    }
  }
  return tokens ?? NO_TOKENS;
}

/** The flat list as strings (undici hands response headers over as latin1 Buffers). */
export function textHeaders(raw: ReadonlyArray<string | Buffer>): string[] {
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = textOf(raw[i] as string | Buffer);
  return out;
}

/** Removes hop-by-hop fields (and `also`, lower-case); the list itself when there is nothing to remove. */
function withoutHopByHop(raw: readonly string[], also: string | null): readonly string[] {
  const listed = connectionTokens(raw);
  let out: string[] | null = null;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    const drop = isHopByHop(lower, listed) || lower === also;
    if (drop && out === null) out = raw.slice(0, i);
    else if (!drop && out !== null) out.push(name, raw[i + 1] as string);
  }
  return out ?? raw;
}

/**
 * Request headers to send upstream: hop-by-hop removed, and `expect` (the proxy answers
 * `100-continue` itself; undici does not send it). Everything else, `traceparent` included, unchanged.
 */
export function upstreamRequestHeaders(raw: readonly string[]): string[] {
  return withoutHopByHop(raw, 'expect') as string[];
}

/** Response headers to send downstream: hop-by-hop removed; Node sets its own framing. */
export function downstreamResponseHeaders(raw: ReadonlyArray<string | Buffer>): string[] {
  const text = raw.every((v) => typeof v === 'string') ? (raw as readonly string[]) : textHeaders(raw);
  return withoutHopByHop(text, null) as string[];
}

/** Headers whose values never go into flows or logs. */
export const REDACTED_HEADERS: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']);
export const REDACTED_VALUE = 'HUBBLE_REDACTED';

export interface FlowHeader {
  key: string;
  value: string;
}

/** `rawHeaders` → Hubble's sorted `{key, value}` list, secrets redacted. */
export function flowHeaders(raw: ReadonlyArray<string | Buffer>): FlowHeader[] {
  const out = new Array<FlowHeader>(raw.length >> 1);
  for (let i = 0, j = 0; i + 1 < raw.length; i += 2, j++) {
    const key = textOf(raw[i] as string | Buffer).toLowerCase();
    const value = REDACTED_HEADERS.has(key) ? REDACTED_VALUE : textOf(raw[i + 1] as string | Buffer);
    out[j] = { key, value };
  }
  // Stable, by key: repeated fields keep their order (as before). Most lists arrive nearly sorted.
  return out.sort(byKey);
}

function byKey(a: FlowHeader, b: FlowHeader): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
