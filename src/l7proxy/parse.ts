/**
 * Stage 2, parse: Node's HTTP parser (strict mode) has already framed the request; this stage
 * rejects what Node lets through but a policy proxy must not guess about, and normalises the
 * request-target so the policy sees exactly what the upstream will be asked for.
 *
 * Rejected (400): Content-Length together with Transfer-Encoding; a Transfer-Encoding other than
 * `chunked`; repeated single-valued fields (Host, Content-Length, Authorization, …: the policy would
 * see one value and the server another); too many header fields; a request-target that is neither
 * origin-form, absolute `http:` form, nor `*` for OPTIONS; a path that cannot be normalised.
 *
 * Path normalisation (`normalize-path.ts`, Cilium's `http-normalize-path`, on by default): the
 * normalised path is `ParsedRequest.path`, the one the policy matches, the flow's URL shows and the
 * upstream receives, so the server can never be asked for another resource than the one judged.
 * A path with escaped slashes is answered 307 to its normalised form (Envoy UNESCAPE_AND_REDIRECT).
 */

import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { TraceContext } from '../observe/index.js';
import { normalizeRequestTarget } from '../policy/index.js';
import type { ConnectionInfo, RefusedRequest } from './types.js';

/** Fields that must appear at most once (Node keeps only the first of these), each with its bit. */
const SINGLETON_FIELDS: ReadonlyMap<string, number> = new Map(
  [
    'host',
    'content-length',
    'content-type',
    'transfer-encoding',
    'authorization',
    'proxy-authorization',
    'user-agent',
    'referer',
    'from',
    'max-forwards',
    'if-modified-since',
    'if-unmodified-since',
  ].map((name, i) => [name, 1 << i]),
);

export interface ParsedRequest {
  method: string;
  /**
   * Origin-form request-target, query included, normalised when `normalizePath` is on: what the
   * policy matches, the flow URL shows and the upstream receives.
   */
  path: string;
  /** The request-target's path and query as received, when normalisation changed them. */
  originalPath?: string;
  host: string;
  /** `http://{host}{path}`, the flow's URL. */
  url: string;
  protocol: string;
  /** Node's header object, for the policy callback. */
  headers: Record<string, string | string[] | undefined>;
  /** Flat `[name, value, …]` as received (case, order and repeats kept). */
  rawHeaders: string[];
  /** What to send upstream instead of `rawHeaders` (the tracer's trace headers, trace.ts); absent: `rawHeaders`. */
  upstreamRawHeaders?: string[];
  /** True when the request carries a body (Content-Length > 0 or chunked). */
  hasBody: boolean;
  /** Declared length, or null when chunked / absent. */
  contentLength: number | null;
  expectContinue: boolean;
  traceContext?: TraceContext;
}

export type ParseResult =
  | { ok: true; request: ParsedRequest }
  | { ok: false; status: 400 | 431; reason: string }
  /** Escaped slashes in the path: the client is sent to `location` (Envoy UNESCAPE_AND_REDIRECT). */
  | { ok: false; status: 307; reason: string; location: string; method: string; path: string };

function reject(reason: string): ParseResult {
  return { ok: false, status: 400, reason };
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The trace id of a valid W3C `traceparent`, else undefined. The header itself is forwarded untouched. */
export function traceContextOf(traceparent: string | undefined): TraceContext | undefined {
  if (traceparent === undefined) return undefined;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (!m) return undefined;
  const [, version, traceId, parentId] = m as unknown as [string, string, string, string];
  if (version === 'ff' || /^0+$/.test(traceId) || /^0+$/.test(parentId)) return undefined;
  if (version === '00' && m[5] !== undefined) return undefined;
  return { parent: { trace_id: traceId } };
}

function hostForUrl(ip: string, port: number): string {
  const h = ip.includes(':') ? `[${ip}]` : ip;
  return port === 80 ? h : `${h}:${port}`;
}

export interface ParseLimits {
  maxHeadersCount: number;
  /** Cilium `http-normalize-path`. Default true. */
  normalizePath?: boolean;
}

/** The path (and query) of an absolute-form target, as sent: `URL` would already rewrite it. */
function rawPathOfAbsolute(target: string): string {
  const rest = target.slice('http://'.length);
  const i = rest.search(/[/?]/);
  if (i < 0) return '/';
  const p = rest.slice(i);
  return p.startsWith('?') ? `/${p}` : p;
}

export function parseRequest(req: IncomingMessage, conn: ConnectionInfo, limits: ParseLimits): ParseResult {
  const raw = req.rawHeaders;
  // Envoy answers too many header fields 431 (its max_headers_count), as an oversized header block.
  if (raw.length / 2 > limits.maxHeadersCount) return { ok: false, status: 431, reason: `more than ${limits.maxHeadersCount} header fields` };

  // A repeated singleton is found with one bit per field: no per-request map.
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const bit = SINGLETON_FIELDS.get(name);
    if (bit === undefined) continue;
    if ((seen & bit) !== 0) return reject(`repeated ${name} header`);
    seen |= bit;
  }

  const te = req.headers['transfer-encoding'];
  const cl = req.headers['content-length'];
  if (te !== undefined && cl !== undefined) return reject('both Content-Length and Transfer-Encoding');
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') return reject(`unsupported Transfer-Encoding ${JSON.stringify(te)}`);
  let contentLength: number | null = null;
  if (cl !== undefined) {
    if (!/^[0-9]{1,15}$/.test(cl)) return reject('invalid Content-Length');
    contentLength = Number(cl);
  }

  const method = req.method ?? '';
  let target = req.url ?? '';
  let host = req.headers.host;
  if (target.startsWith('/')) {
    // origin-form
  } else if (/^http:\/\//i.test(target)) {
    let u: URL;
    try {
      u = new URL(target);
    } catch {
      return reject('invalid absolute request-target');
    }
    if (u.username !== '' || u.password !== '') return reject('credentials in request-target');
    target = rawPathOfAbsolute(target);
    host = u.host; // RFC 9112 §3.2.2: the target's authority replaces Host
  } else if (target === '*' && method === 'OPTIONS') {
    // asterisk-form
  } else {
    return reject('invalid request-target');
  }
  if (target.includes('#')) return reject('fragment in request-target');

  let originalPath: string | undefined;
  if (limits.normalizePath !== false) {
    const n = normalizeRequestTarget(target);
    if (n.kind === 'reject') return reject(n.reason);
    if (n.kind === 'redirect') {
      return { ok: false, status: 307, reason: 'escaped slashes in path: redirected to the normalized path', location: n.location, method, path: target };
    }
    if (n.changed) {
      originalPath = target;
      target = n.target;
    }
  }

  if (host === undefined || host === '') {
    if (req.httpVersion !== '1.0') return reject('missing Host');
    host = hostForUrl(conn.dstIp, conn.dstPort);
  }

  // Node's header object as it is, unless the Host the policy must see is another one.
  const headers = host === req.headers.host ? req.headers : { ...req.headers, host };
  const expect = req.headers.expect;
  const request: ParsedRequest = {
    method,
    path: target,
    host,
    url: `http://${host}${target === '*' ? '' : target}`,
    protocol: req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`,
    headers,
    rawHeaders: raw,
    hasBody: te !== undefined || (contentLength !== null && contentLength > 0),
    contentLength,
    expectContinue: typeof expect === 'string' && expect.toLowerCase() === '100-continue',
  };
  if (originalPath !== undefined) request.originalPath = originalPath;
  const tp = req.headers.traceparent;
  const traceContext = traceContextOf(typeof tp === 'string' ? tp : undefined);
  if (traceContext) request.traceContext = traceContext;
  return { ok: true, request };
}

/**
 * The raw headers the request goes upstream with, before hop-by-hop removal: the tracer's
 * (`upstreamRawHeaders`) or the client's, with Host rewritten to the target's authority when the
 * policy judged another host than the client's Host field (`clientHost`: an absolute-form target),
 * so the server and the policy agree.
 */
export function rawHeadersToSend(request: ParsedRequest, clientHost: string | undefined): string[] {
  const sent = request.upstreamRawHeaders ?? request.rawHeaders;
  return request.host !== clientHost ? withHost(sent, request.host) : sent;
}

/** `raw` with its Host field (added when missing) set to `host`. */
function withHost(raw: readonly string[], host: string): string[] {
  const out: string[] = [];
  let had = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === 'host') {
      out.push(raw[i] as string, host);
      had = true;
    } else out.push(raw[i] as string, raw[i + 1] as string);
  }
  if (!had) out.unshift('host', host);
  return out;
}

/** A request-target as the flows write URLs: origin-form joined to its host, any other form as sent. */
function flowUrlOf(target: string, host: string | undefined, conn: ConnectionInfo): string {
  if (!target.startsWith('/')) return target;
  return `http://${host !== undefined && host !== '' ? host : hostForUrl(conn.dstIp, conn.dstPort)}${target}`;
}

/** What the flows of a locally answered request say of it (log.ts `localReplyFlows`), from Node's parse. */
export function refusedRequestOf(req: IncomingMessage, conn: ConnectionInfo): RefusedRequest {
  const protocol = req.httpVersion === '1.1' ? 'HTTP/1.1' : `HTTP/${req.httpVersion}`;
  return { method: req.method ?? '', url: flowUrlOf(req.url ?? '', req.headers.host, conn), protocol };
}

/** The request line is looked for in this many first bytes of what failed to parse. */
const REQUEST_LINE_MAX = 8192;

/**
 * The same from bytes Node's parser refused (`clientError`'s `rawPacket`): the request line when
 * they start with one (`METHOD SP target SP HTTP/1.x`), else method and URL ''. No Host is read:
 * the header block is what failed.
 */
export function refusedRequestOfBytes(raw: Buffer | undefined, conn: ConnectionInfo): RefusedRequest {
  const unknown: RefusedRequest = { method: '', url: '', protocol: 'HTTP/1.1' };
  if (raw === undefined) return unknown;
  const head = raw.subarray(0, REQUEST_LINE_MAX).toString('latin1');
  const end = head.indexOf('\r\n');
  if (end < 0) return unknown;
  const parts = head.slice(0, end).split(' ');
  if (parts.length !== 3) return unknown;
  const [method, target, version] = parts as [string, string, string];
  if (!/^[A-Z]{1,20}$/.test(method) || target === '' || (version !== 'HTTP/1.1' && version !== 'HTTP/1.0')) return unknown;
  return { method, url: flowUrlOf(target, undefined, conn), protocol: version };
}

/** The same for an HTTP/2 stream, from its pseudo-header fields (`:authority`, else Host). */
export function h2RefusedRequestOf(headers: IncomingHttpHeaders, conn: ConnectionInfo): RefusedRequest {
  const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);
  const method = one(headers[':method']) ?? '';
  const authority = one(headers[':authority']) ?? one(headers.host);
  const url = method === 'CONNECT' ? (authority ?? '') : flowUrlOf(one(headers[':path']) ?? '', authority, conn);
  return { method, url, protocol: 'HTTP/2' };
}
