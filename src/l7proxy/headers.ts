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

/**
 * Removes hop-by-hop fields (and `also`, lower-case); the list itself when there is nothing to
 * remove. `listed`: `connectionTokens(raw)` when the caller has it already.
 */
function withoutHopByHop(raw: readonly string[], also: string | null, listed: ReadonlySet<string> = connectionTokens(raw)): readonly string[] {
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
 * `100-continue` itself; undici does not send it). Everything else, `traceparent` included,
 * unchanged. `listed`: the request's `connectionTokens`, when already read (the proxy reads them
 * once per request).
 */
export function upstreamRequestHeaders(raw: readonly string[], listed?: ReadonlySet<string>): string[] {
  return withoutHopByHop(raw, 'expect', listed ?? connectionTokens(raw)) as string[];
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

/**
 * The lists made last, most recent first: a connection's request flows and response flows
 * alternate, and the header lists of one kind mostly repeat (issue 9: lower-casing, redacting and
 * sorting them was ~1% of a proxy worker's CPU at 2000 req/s). A list made here is frozen and may
 * be shared by many flows: flows are read, never changed.
 */
const RECENT: Array<{ raw: string[]; list: readonly FlowHeader[] }> = [];
const RECENT_MAX = 4;

/** `raw` equals `kept`, field for field (as text). */
function sameRaw(raw: ReadonlyArray<string | Buffer>, kept: readonly string[]): boolean {
  if (raw.length !== kept.length) return false;
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i] as string | Buffer;
    if (typeof v !== 'string' || v !== kept[i]) return false;
  }
  return true;
}

/** `rawHeaders` → Hubble's sorted `{key, value}` list, secrets redacted. Read-only: it may be shared. */
export function flowHeaders(raw: ReadonlyArray<string | Buffer>): FlowHeader[] {
  for (let i = 0; i < RECENT.length; i++) {
    const r = RECENT[i] as { raw: string[]; list: readonly FlowHeader[] };
    if (sameRaw(raw, r.raw)) {
      if (i > 0) {
        RECENT.splice(i, 1);
        RECENT.unshift(r);
      }
      return r.list as FlowHeader[];
    }
  }
  const out = new Array<FlowHeader>(raw.length >> 1);
  for (let i = 0, j = 0; i + 1 < raw.length; i += 2, j++) {
    const key = textOf(raw[i] as string | Buffer).toLowerCase();
    const value = REDACTED_HEADERS.has(key) ? REDACTED_VALUE : textOf(raw[i + 1] as string | Buffer);
    out[j] = Object.freeze({ key, value });
  }
  // Stable, by key: repeated fields keep their order (as before). Most lists arrive nearly sorted.
  out.sort(byKey);
  Object.freeze(out);
  RECENT.unshift({ raw: textHeaders(raw), list: out });
  if (RECENT.length > RECENT_MAX) RECENT.pop();
  return out;
}

function byKey(a: FlowHeader, b: FlowHeader): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
