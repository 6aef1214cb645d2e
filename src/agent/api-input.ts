/**
 * The agent API's input checks: request bodies and query strings are user data, so each is
 * checked for shape before anything uses it, and every fault is a MEMBRANE_ERR_API_REQUEST
 * (HTTP 400) naming the field — never a TypeError deep inside a handler (a 500) or a crash.
 */
import type { IncomingMessage } from 'node:http';
import { membraneError } from '../errors/index.js';
import { compileFilters, type FilterFunc, type FilterSet } from '../observe/index.js';

/**
 * Largest request body, bytes. A policy file is the largest body there is, and the watched
 * directory refuses files over 4 MiB (policy-source.ts), so a bigger import could never load.
 */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Media types a JSON body may declare (none declared is accepted too, as curl -d sends none useful). */
export const JSON_TYPES = ['application/json'] as const;
/** Media types a policy file may declare: YAML or JSON, as `kubectl` and `cilium` read either. */
export const POLICY_TYPES = ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml', 'text/plain', 'application/json'] as const;

const bad = (detail: string): Error => membraneError('MEMBRANE_ERR_API_REQUEST', detail);

/**
 * Checks the declared content type against `accepted` (parameters such as charset are ignored;
 * no content type at all is accepted). Throws MEMBRANE_ERR_API_MEDIA_TYPE (415).
 */
export function checkContentType(req: IncomingMessage, accepted: readonly string[]): void {
  const declared = req.headers['content-type'];
  if (declared === undefined) return;
  const type = (declared.split(';', 1)[0] ?? '').trim().toLowerCase();
  if (!accepted.includes(type)) {
    throw membraneError('MEMBRANE_ERR_API_MEDIA_TYPE', `${declared || '(empty)'}; this route takes ${accepted.join(', ')}`, {
      details: { accepted },
    });
  }
}

/**
 * Reads the whole body as UTF-8, at most `limit` bytes. Over the limit it throws
 * MEMBRANE_ERR_API_TOO_LARGE (413) and discards the rest as it arrives, without destroying the
 * socket, so a client still writing its body reads the answer.
 */
export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<string> {
  const tooLarge = (): Error => membraneError('MEMBRANE_ERR_API_TOO_LARGE', `request body over ${limit} bytes`, { details: { limit } });
  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      fn();
    };
    req.on('data', (chunk: Buffer) => {
      if (settled) return;
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        settle(() => reject(tooLarge()));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => settle(() => resolve(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', (err) => settle(() => reject(bad(`request body: ${err.message}`))));
    req.on('close', () => settle(() => reject(bad('the request body ended early'))));
  });
}

/** A JSON body (content type JSON or none), parsed; a syntax error is a 400 with the parser's words. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  checkContentType(req, JSON_TYPES);
  return parseJson(await readBody(req), 'request body');
}

export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw bad(`${what} is not JSON: ${(err as Error).message}`);
  }
}

/** A route parameter, percent-decoded; a malformed escape (`%E0%A4%A`) is a 400, not a URIError. */
export function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw bad(`path segment ${JSON.stringify(raw)} is not valid percent-encoding`);
  }
}

/** The request target as a URL on the agent; only origin-form (`/path?query`) is served. */
export function requestUrl(target: string | undefined): URL {
  if (!target?.startsWith('/')) throw bad(`request target ${JSON.stringify(target ?? '')} must start with /`);
  try {
    return new URL(`http://agent${target}`);
  } catch {
    throw bad(`request target ${JSON.stringify(target)} is not a URL path`);
  }
}

/** Query parameter `name`: absent → `fallback`, otherwise a positive integer or a 400. */
export function positiveIntParam(url: URL, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 1 || n > max) throw bad(`${name}=${raw} must be an integer from 1 to ${max}`);
  return n;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const FILTER_VALUE = (v: unknown): boolean =>
  typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || (isObject(v) && Object.values(v).every((x) => typeof x === 'number' || typeof x === 'boolean'));

/**
 * `filters=` of GET /v1/flows: Hubble's FilterSet in JSON (`{allow: [FlowFilter], deny: [...]}`),
 * compiled once. Shape faults are MEMBRANE_ERR_API_REQUEST; a value a filter cannot compile
 * (a bad CIDR, a regex) is observe's MEMBRANE_ERR_OBSERVE_FILTER — both 400.
 */
export function flowFilter(text: string | null): FilterFunc {
  if (text === null) return compileFilters({ allow: [], deny: [] });
  const set = parseJson(text, 'filters');
  if (!isObject(set)) throw bad('filters must be an object {allow: [...], deny: [...]}');
  for (const side of ['allow', 'deny'] as const) {
    const groups = set[side];
    if (groups === undefined) continue;
    if (!Array.isArray(groups)) throw bad(`filters.${side} must be a list of filter objects`);
    groups.forEach((g: unknown, i) => {
      if (!isObject(g)) throw bad(`filters.${side}[${i}] must be an object`);
      for (const [k, v] of Object.entries(g)) {
        if (!Array.isArray(v) || !v.every(FILTER_VALUE)) throw bad(`filters.${side}[${i}].${k} must be a list of values`);
      }
    });
  }
  try {
    return compileFilters(set as Partial<FilterSet>);
  } catch (err) {
    if ((err as { code?: string }).code === 'MEMBRANE_ERR_OBSERVE_FILTER') throw err;
    // Only the user's filter values went in: whatever a filter could not take is their fault.
    throw membraneError('MEMBRANE_ERR_OBSERVE_FILTER', (err as Error).message, { cause: err });
  }
}

function checkLabels(v: unknown, field: string): void {
  if (!isObject(v) || !Object.values(v).every((x) => typeof x === 'string')) throw bad(`${field} must map label keys to string values`);
}

function checkPeer(v: unknown, field: string): void {
  if (!isObject(v)) throw bad(`${field} must be an object {labels, namespace}`);
  checkLabels(v.labels, `${field}.labels`);
  if (v.namespace !== undefined && typeof v.namespace !== 'string') throw bad(`${field}.namespace must be a string`);
  if (v.namespaceLabels !== undefined) checkLabels(v.namespaceLabels, `${field}.namespaceLabels`);
}

function checkOptional(body: Record<string, unknown>, field: string, ok: (v: unknown) => boolean, want: string): void {
  if (body[field] !== undefined && !ok(body[field])) throw bad(`${field} must be ${want}`);
}

/**
 * POST /v1/policy/trace: the fields every trace has, checked by type (src, dst, dport,
 * protocol, CIDRs, http, dnsName). Fields it does not know are passed on unchanged for
 * tracePolicy to judge. Returns the body as an object.
 */
export function traceBody(body: unknown): Record<string, unknown> {
  if (!isObject(body)) throw bad('the trace request must be a JSON object');
  for (const side of ['src', 'dst'] as const) {
    if (body[side] !== undefined) checkPeer(body[side], side);
    else if (body[`${side}Cidr`] === undefined) throw bad(`give ${side} (labels and namespace) or ${side}Cidr`);
  }
  checkOptional(body, 'dport', (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535, 'an integer from 0 to 65535');
  checkOptional(body, 'protocol', (v) => typeof v === 'string' && ['TCP', 'UDP', 'SCTP', 'ICMP'].includes(v), 'one of TCP, UDP, SCTP, ICMP');
  for (const f of ['srcCidr', 'dstCidr', 'dnsName']) checkOptional(body, f, (v) => typeof v === 'string', 'a string');
  checkOptional(body, 'tlsSni', (v) => typeof v === 'string' || v === null, 'a string (null: a ClientHello without SNI)');
  checkOptional(
    body,
    'http',
    (v) =>
      isObject(v) &&
      typeof v.method === 'string' &&
      typeof v.path === 'string' &&
      (v.host === undefined || typeof v.host === 'string') &&
      (v.headers === undefined || (isObject(v.headers) && Object.values(v.headers).every((x) => typeof x === 'string'))),
    'an object {method, path, host?, headers?} of strings',
  );
  return body;
}
