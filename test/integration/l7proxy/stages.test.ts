/** Each pipeline stage on its own, without servers. */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  acceptConnection,
  downstreamResponseHeaders,
  evaluatePolicy,
  flowHeaders,
  parseRequest,
  poolKey,
  replyForUpstreamError,
  traceContextOf,
  upstreamRequestHeaders,
  type ConnectionInfo,
  type FlowContext,
} from '../../../src/l7proxy/index.js';
import { errors as undiciErrors } from 'undici';
import { PolicyState, starwarsPolicyYaml } from '../../support/policy-state.js';
import { DEATHSTAR, TIEFIGHTER } from './harness.js';

const CONN: ConnectionInfo = { srcIp: '10.0.1.10', srcPort: 40000, dstIp: '10.0.1.20', dstPort: 80 };
const CTX: FlowContext = { srcIdentity: 25698, dstIdentity: 6822, source: TIEFIGHTER, destination: DEATHSTAR, direction: 'INGRESS' };

function fakeReq(method: string, url: string, raw: string[], httpVersion = '1.1'): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = (raw[i] as string).toLowerCase();
    headers[k] = headers[k] === undefined ? (raw[i + 1] as string) : `${headers[k]}, ${raw[i + 1]}`;
  }
  return { method, url, rawHeaders: raw, headers, httpVersion } as unknown as IncomingMessage;
}

describe('accept', () => {
  const socket = (local: string, remote: string): Socket =>
    ({ localAddress: local, localPort: 80, remoteAddress: remote, remotePort: 40000 }) as unknown as Socket;

  it('takes the original destination from the transparent socket and normalises mapped IPv4', () => {
    const r = acceptConnection(socket('::ffff:10.0.1.20', '::ffff:10.0.1.10'), { resolveConnection: () => CTX });
    expect(r).toEqual({ ok: true, conn: CONN, ctx: CTX });
  });

  it('fails closed: unknown source, resolver errors, not-redirected, no address', () => {
    expect(acceptConnection(socket('10.0.1.20', '10.0.1.10'), { resolveConnection: () => null })).toMatchObject({ ok: false, reason: 'unknown-source' });
    const boom = acceptConnection(socket('10.0.1.20', '10.0.1.10'), {
      resolveConnection: () => {
        throw new Error('x');
      },
    });
    expect(boom).toMatchObject({ ok: false, reason: 'resolve-error' });
    expect(acceptConnection(socket('10.0.1.20', '10.0.1.10'), { resolveConnection: () => CTX }, () => true)).toMatchObject({ ok: false, reason: 'not-redirected' });
    const closed = { localAddress: undefined, remoteAddress: undefined } as unknown as Socket;
    expect(acceptConnection(closed, { resolveConnection: () => CTX })).toMatchObject({ ok: false, reason: 'no-address' });
  });
});

describe('parse', () => {
  const limits = { maxHeadersCount: 10 };

  it('builds the facts policy and flows need', () => {
    const r = parseRequest(fakeReq('PUT', '/v1/exhaust-port?x=1', ['Host', 'deathstar', 'Content-Length', '4']), CONN, limits);
    expect(r).toMatchObject({
      ok: true,
      request: { method: 'PUT', path: '/v1/exhaust-port?x=1', host: 'deathstar', url: 'http://deathstar/v1/exhaust-port?x=1', protocol: 'HTTP/1.1', hasBody: true, contentLength: 4 },
    });
  });

  it('HTTP/1.0 without Host uses the original destination', () => {
    const r = parseRequest(fakeReq('GET', '/', [], '1.0'), { ...CONN, dstPort: 8080 }, limits);
    expect(r).toMatchObject({ ok: true, request: { host: '10.0.1.20:8080', url: 'http://10.0.1.20:8080/', protocol: 'HTTP/1.0', hasBody: false } });
  });

  it.each([
    ['CL + TE', fakeReq('POST', '/', ['Host', 'h', 'Content-Length', '1', 'Transfer-Encoding', 'chunked'])],
    ['TE gzip', fakeReq('POST', '/', ['Host', 'h', 'Transfer-Encoding', 'gzip'])],
    ['two hosts', fakeReq('GET', '/', ['Host', 'a', 'host', 'b'])],
    ['two authorizations', fakeReq('GET', '/', ['Host', 'a', 'Authorization', 'x', 'Authorization', 'y'])],
    ['bad CL', fakeReq('POST', '/', ['Host', 'h', 'Content-Length', '-1'])],
    ['authority-form', fakeReq('GET', 'deathstar:80', ['Host', 'h'])],
    ['https absolute form', fakeReq('GET', 'https://deathstar/', ['Host', 'h'])],
    ['credentials', fakeReq('GET', 'http://u:p@deathstar/', ['Host', 'h'])],
    ['asterisk on GET', fakeReq('GET', '*', ['Host', 'h'])],
    ['missing host', fakeReq('GET', '/', [])],
  ])('rejects %s', (_n, req) => {
    expect(parseRequest(req, CONN, limits)).toMatchObject({ ok: false, status: 400 });
  });

  it('rejects too many fields with 431, as Envoy past max_headers_count', () => {
    const req = fakeReq('GET', '/', Array.from({ length: 11 }, (_, i) => [`X-${i}`, 'v']).flat());
    expect(parseRequest(req, CONN, limits)).toMatchObject({ ok: false, status: 431 });
  });

  it('reads W3C trace context without touching the header', () => {
    expect(traceContextOf('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({ parent: { trace_id: '4bf92f3577b34da6a3ce929d0e0e4736' } });
    expect(traceContextOf('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeUndefined();
    expect(traceContextOf('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBeUndefined();
    expect(traceContextOf('garbage')).toBeUndefined();
    expect(traceContextOf(undefined)).toBeUndefined();
  });
});

describe('policy', () => {
  const state = new PolicyState(starwarsPolicyYaml('sw_l3_l4_l7_policy.yaml'));

  it('judges with the policy module\'s decideL7 on the flow the dependency returns', () => {
    const flows: unknown[] = [];
    const l7Flow = (ctx: FlowContext, conn: ConnectionInfo) => {
      flows.push([ctx.srcIdentity, conn.dstPort]);
      return state.flow('tiefighter', 'deathstar', conn.dstPort);
    };
    expect(evaluatePolicy(l7Flow, CTX, CONN, { method: 'POST', path: '/v1/request-landing', host: 'h', headers: {} })).toMatchObject({
      allowed: true,
      policies: ['default/rule1'],
    });
    expect(evaluatePolicy(l7Flow, CTX, CONN, { method: 'PUT', path: '/v1/exhaust-port', host: 'h', headers: {} })).toEqual({
      allowed: false,
      reason: 'ingress: HTTP PUT /v1/exhaust-port matches no HTTP rule',
      policies: ['default/rule1'],
    });
    expect(flows).toEqual([
      [25698, 80],
      [25698, 80],
    ]);
  });

  it('denies when the policy state cannot be read', () => {
    const req = { method: 'POST', path: '/v1/request-landing', host: 'h', headers: {} };
    expect(evaluatePolicy(() => { throw new Error('state gone'); }, CTX, CONN, req)).toEqual({ allowed: false, reason: 'policy error: state gone' });
    expect(evaluatePolicy(() => undefined as never, CTX, CONN, req)).toMatchObject({ allowed: false });
  });
});

describe('forward helpers', () => {
  it('strips hop-by-hop request headers, including those named by Connection, and Expect', () => {
    expect(
      upstreamRequestHeaders(['Host', 'h', 'Connection', 'keep-alive, X-A', 'X-A', '1', 'Keep-Alive', '5', 'TE', 'trailers', 'Proxy-Foo', 'z', 'Expect', '100-continue', 'X-B', '2', 'x-b', '3']),
    ).toEqual(['Host', 'h', 'X-B', '2', 'x-b', '3']);
  });

  it('strips hop-by-hop response headers from undici raw buffers', () => {
    const raw = ['Connection', 'x-z', 'X-Z', '1', 'Transfer-Encoding', 'chunked', 'Content-Type', 'text/plain', 'Upgrade', 'h2c'].map((s) => Buffer.from(s));
    expect(downstreamResponseHeaders(raw)).toEqual(['Content-Type', 'text/plain']);
  });

  it('flow headers are sorted, lower-cased and redacted', () => {
    expect(flowHeaders(['X-B', '2', 'Cookie', 'sid=1', 'a', '1'])).toEqual([
      { key: 'a', value: '1' },
      { key: 'cookie', value: 'HUBBLE_REDACTED' },
      { key: 'x-b', value: '2' },
    ]);
  });

  it('flow headers of a list seen before are the same (issue-9: recent lists are kept), of another list its own', () => {
    const lists = [
      ['Host', 'deathstar', 'Authorization', 'Bearer x'],
      ['Server', 'nginx', 'Date', 'Tue, 01 Dec 2026 06:00:00 GMT', 'Connection', 'keep-alive'],
      ['Server', 'nginx', 'Date', 'Tue, 01 Dec 2026 06:00:01 GMT', 'Connection', 'keep-alive'],
      ['host', 'deathstar', 'authorization', 'Bearer x'],
      ['Host', 'deathstar'],
      ['Host', 'deathstar', 'Authorization'],
    ];
    const expected = (raw: string[]): { key: string; value: string }[] => {
      const out: { key: string; value: string }[] = [];
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const key = raw[i]!.toLowerCase();
        out.push({ key, value: key === 'authorization' ? 'HUBBLE_REDACTED' : raw[i + 1]! });
      }
      return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    };
    // Interleaved and repeated, more lists than are kept, copies of the same text and Buffers too.
    for (let round = 0; round < 3; round++) {
      for (const raw of [...lists, ...lists.slice().reverse()]) {
        expect(flowHeaders(raw.map((s) => `${s} `.trimEnd()))).toEqual(expected(raw));
        expect(flowHeaders(raw.map((s) => Buffer.from(s, 'latin1')))).toEqual(expected(raw));
      }
    }
    const shared = flowHeaders(lists[0]!);
    expect(Object.isFrozen(shared) && shared.every((h) => Object.isFrozen(h))).toBe(true);
  });

  it('pool keys separate identities and destinations', () => {
    expect(poolKey({ srcIdentity: 1 }, CONN)).not.toBe(poolKey({ srcIdentity: 2 }, CONN));
    expect(poolKey({ srcIdentity: 1 }, CONN)).not.toBe(poolKey({ srcIdentity: 1 }, { ...CONN, dstPort: 81 }));
  });

  it('maps upstream failures to 503 / 502 / 504', () => {
    expect(replyForUpstreamError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })).status).toBe(503);
    expect(replyForUpstreamError(new undiciErrors.HeadersTimeoutError()).status).toBe(504);
    expect(replyForUpstreamError(new undiciErrors.HTTPParserError('bad')).status).toBe(502);
    expect(replyForUpstreamError(new undiciErrors.SocketError('other side closed')).status).toBe(503);
  });
});
