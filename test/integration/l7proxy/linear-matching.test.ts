/**
 * issue-6 a policy regex cannot stall the node's proxy: with catastrophic patterns loaded as
 * allowed HTTP rules (each takes a backtracking engine 2^n steps on the inputs below), adversarial
 * requests are answered, and an allowed request sent while they are in flight is answered before
 * they are all done. Real proxy, real policy resolution and decision, real upstream, raw sockets.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanups, rawExchange, startProxy, startUpstream } from './harness.js';

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const HOST = 'deathstar.default.svc.cluster.local';
const ATTACKERS = 6;

const CATASTROPHIC = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: catastrophic}
spec:
  endpointSelector: {matchLabels: {class: deathstar}}
  ingress:
  - fromEndpoints: [{matchLabels: {org: empire}}]
    toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - path: "/v1/([a-z]+/?)*end"
        - path: "/a/(a+)+"
        - path: "/x/(.*)*x"
        - path: "/w/(\\\\w+\\\\s?)*$"
        - path: "/n/((a|aa)+|(aa|a)+)+b"
        - method: POST
          path: /v1/request-landing
`;

/** Each of these, against the rules above, makes a backtracking matcher explode. */
function adversarial(n: number): string[] {
  const a = 'a'.repeat(n);
  return [
    `GET /v1/${a}! HTTP/1.1`,
    `GET /a/${a}! HTTP/1.1`,
    `GET /x/${a} HTTP/1.1`,
    `GET /w/${a}! HTTP/1.1`,
    `GET /n/${a}c HTTP/1.1`,
  ];
}

function statusOf(text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
}

describe('issue-6 linear-time matching in the proxy', () => {
  it('the issue\'s request and every catastrophic family are answered 403, for inputs long enough to never finish by backtracking', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: CATASTROPHIC });
    // 29 letters held the old proxy ~10 s; 4000 would hold it longer than the universe has existed.
    for (const n of [29, 4000]) {
      for (const line of adversarial(n)) {
        const r = await rawExchange(cleanups, h.port, `${line}\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`, { timeoutMs: 10_000 });
        expect([line.slice(0, 40), statusOf(r.text)]).toEqual([line.slice(0, 40), 403]);
      }
    }
    expect(upstream.requests).toHaveLength(0);
    const ok = await rawExchange(cleanups, h.port, `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    expect(statusOf(ok.text)).toBe(200);
  });

  it('an allowed request sent while adversarial ones are in flight is answered before they are all done', async () => {
    const upstream = await startUpstream(cleanups);
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: CATASTROPHIC });
    const lines = adversarial(8000);
    const budget = 2000; // per attacker: far more than the test needs
    let answered = 0;
    let exhausted = 0;
    let stopped = false;
    // Closed-loop attackers on keep-alive connections: each sends its next adversarial request as
    // soon as the previous one is answered, until stopped or out of budget.
    const attackers = Array.from({ length: ATTACKERS }, (_, c) =>
      new Promise<void>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: h.port });
        cleanups.add(() => s.destroy());
        let sent = 0;
        let buf = '';
        const next = (): void => {
          if (stopped || sent === budget) {
            if (sent === budget) exhausted++;
            s.end();
            resolve();
            return;
          }
          s.write(`${lines[(c + sent) % lines.length]}\r\nHost: ${HOST}\r\n\r\n`);
          sent++;
        };
        s.on('error', reject);
        s.on('data', (d: Buffer) => {
          buf += d.toString('latin1');
          let i: number;
          while ((i = buf.indexOf('Access denied\r\n')) >= 0) {
            buf = buf.slice(i + 15);
            answered++;
            next();
          }
        });
        s.on('connect', next);
      }),
    );
    // Let the attack get going, then ask for a landing.
    while (answered < 2 * ATTACKERS) await new Promise((r) => setTimeout(r, 1));
    const r = await rawExchange(cleanups, h.port, `POST /v1/request-landing HTTP/1.1\r\nHost: ${HOST}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, {
      timeoutMs: 10_000,
    });
    const attackStillRunning = exhausted === 0;
    stopped = true;
    await Promise.all(attackers);
    expect(statusOf(r.text)).toBe(200);
    expect(attackStillRunning).toBe(true);
    expect(answered).toBeGreaterThanOrEqual(2 * ATTACKERS);
    expect(upstream.requests.map((x) => x.url)).toEqual(['/v1/request-landing']);
  });
});
