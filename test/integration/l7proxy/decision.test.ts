/**
 * issue-6 the proxy's verdicts are the policy module's decision: each case is real
 * CiliumNetworkPolicy YAML resolved by the policy module for tiefighter → deathstar:80, a real
 * client through the real proxy to a real upstream. What the client gets, what reaches the
 * upstream and what the access log says are asserted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { denyIngressFrom, dnsRulesOn80, L4_FOLDED_INTO_L7, tiefighterEgressHttp } from '../../support/policies.js';
import { Cleanups, rawExchange, startProxy, startUpstream, STARWARS_L7, until } from './harness.js';

const EGRESS_GET_ONLY = tiefighterEgressHttp('tiefighter-egress', '{method: GET, path: "/v1/.*"}');
const DENY_TIEFIGHTER = denyIngressFrom('deny-tiefighter', 'tiefighter');
const DNS_RULES_ON_80 = dnsRulesOn80('*');
const L4_FOLDED = L4_FOLDED_INTO_L7;

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const HOST = 'deathstar.default.svc.cluster.local';

async function send(port: number, method: string, path: string): Promise<number> {
  const r = await rawExchange(cleanups, port, `${method} ${path} HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(r.text)?.[1] ?? 0);
}

describe('issue-6 the proxy judges with decideL7', () => {
  it('ingress rules of the destination (only the destination is local)', async () => {
    const up = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: STARWARS_L7, local: 'dst' });
    expect(await send(h.port, 'POST', '/v1/request-landing')).toBe(200);
    expect(await send(h.port, 'PUT', '/v1/exhaust-port')).toBe(403);
    expect(up.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /v1/request-landing']);
    await until(() => h.logs.length === 2);
    expect(h.logs[1]).toMatchObject({ verdict: 'Denied', reason: 'ingress: HTTP PUT /v1/exhaust-port matches no HTTP rule', policies: ['default/rule1'] });
  });

  it('egress rules of the source (only the source is local)', async () => {
    const up = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: EGRESS_GET_ONLY, local: 'src' });
    expect(await send(h.port, 'GET', '/v1/status')).toBe(200);
    expect(await send(h.port, 'POST', '/v1/request-landing')).toBe(403);
    expect(up.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /v1/status']);
    await until(() => h.logs.length === 2);
    expect(h.logs[1]).toMatchObject({ verdict: 'Denied', reason: 'egress: HTTP POST /v1/request-landing matches no HTTP rule', policies: ['default/tiefighter-egress'] });
  });

  it('both sides local: the source\'s egress and the destination\'s ingress must both allow', async () => {
    const up = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: [EGRESS_GET_ONLY, STARWARS_L7], local: 'both' });
    expect(await send(h.port, 'GET', '/v1/status')).toBe(403); // egress allows, ingress does not
    expect(await send(h.port, 'POST', '/v1/request-landing')).toBe(403); // ingress allows, egress does not
    expect(up.requests).toHaveLength(0);
    await until(() => h.logs.length === 2);
    expect(h.logs.map((l) => l.reason)).toEqual([
      'ingress: HTTP GET /v1/status matches no HTTP rule',
      'egress: HTTP POST /v1/request-landing matches no HTTP rule',
    ]);
  });

  it('a deny rule wins over an HTTP allow-all', async () => {
    const up = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: DENY_TIEFIGHTER });
    expect(await send(h.port, 'GET', '/')).toBe(403);
    expect(up.requests).toHaveLength(0);
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ verdict: 'Denied', reason: 'ingress: L3/L4 policy denies the connection (a deny rule)', policies: ['default/deny-tiefighter'] });
  });

  it('no policy state yet: every request is denied (fail closed)', async () => {
    const up = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: STARWARS_L7, local: 'none' });
    expect(await send(h.port, 'POST', '/v1/request-landing')).toBe(403);
    expect(up.requests).toHaveLength(0);
    await until(() => h.logs.length === 1);
    expect(h.logs[0]).toMatchObject({ verdict: 'Denied', reason: 'egress: the endpoint has no policy state yet' });
  });

  it('a port redirected for DNS rules does not pass HTTP: the DNS proxy Cilium hands it to cannot parse it', async () => {
    const up = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: DNS_RULES_ON_80, local: 'src' });
    expect(await send(h.port, 'GET', '/')).toBe(403);
    expect(up.requests).toHaveLength(0);
  });

  it('an L4-only allow folded into the redirect lets every request of that peer through (Cilium)', async () => {
    const up = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: up.port, policy: L4_FOLDED });
    expect(await send(h.port, 'PUT', '/v1/exhaust-port')).toBe(200);
    expect(up.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['PUT /v1/exhaust-port']);
  });
});
