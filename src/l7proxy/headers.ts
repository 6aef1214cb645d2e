/**
 * Header hygiene on both legs. Hop-by-hop headers describe one connection and are never forwarded
 * (RFC 9110 §7.6.1): the fixed set plus every name listed in `Connection`. Order, case and repeated
 * fields of everything else are kept (`rawHeaders`, flat `[name, value, …]`).
 */

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-connection']);

function isHopByHop(lower: string, listed: ReadonlySet<string>): boolean {
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || listed.has(lower);
}

function textOf(v: string | Buffer): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/** Names listed in the `Connection` header(s): they are hop-by-hop too. */
export function connectionTokens(raw: ReadonlyArray<string | Buffer>): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (textOf(raw[i] as string | Buffer).toLowerCase() !== 'connection') continue;
    for (const t of textOf(raw[i + 1] as string | Buffer).split(',')) {
      const token = t.trim().toLowerCase();
      if (token) tokens.add(token);
    }
  }
  return tokens;
}

/**
 * Request headers to send upstream: hop-by-hop removed, and `expect` (the proxy answers
 * `100-continue` itself; undici does not send it). Everything else, `traceparent` included, unchanged.
 */
export function upstreamRequestHeaders(raw: readonly string[]): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (isHopByHop(lower, listed) || lower === 'expect') continue;
    out.push(name, raw[i + 1] as string);
  }
  return out;
}

/** Response headers to send downstream: hop-by-hop removed; Node sets its own framing. */
export function downstreamResponseHeaders(raw: ReadonlyArray<string | Buffer>): string[] {
  const listed = connectionTokens(raw);
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = textOf(raw[i] as string | Buffer);
    if (isHopByHop(name.toLowerCase(), listed)) continue;
    out.push(name, textOf(raw[i + 1] as string | Buffer));
  }
  return out;
}

/** Headers whose values never go into flows or logs. */
export const REDACTED_HEADERS: ReadonlySet<string> = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']);
export const REDACTED_VALUE = 'HUBBLE_REDACTED';

/** `rawHeaders` → Hubble's sorted `{key, value}` list, secrets redacted. */
export function flowHeaders(raw: ReadonlyArray<string | Buffer>): Array<{ key: string; value: string }> {
  const out: Array<{ key: string; value: string }> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = textOf(raw[i] as string | Buffer).toLowerCase();
    const value = REDACTED_HEADERS.has(key) ? REDACTED_VALUE : textOf(raw[i + 1] as string | Buffer);
    out.push({ key, value });
  }
  return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
