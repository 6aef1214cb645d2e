/**
 * issue-8/9 --tofqdns-proxy-response-max-delay with one timer for every held answer: each answer
 * the datapath does not confirm is released unconfirmed exactly its delay after it arrived (not
 * the first's, not later), one confirmed in time is released confirmed, and a clock that stands
 * still does not hold an answer past its delay.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NameManager, type FqdnDatapath } from '../../../src/fqdn/index.js';
import { loadPolicyText, policyFqdnSelectors } from '../../../src/policy/index.js';

type Call = ReadonlyArray<{ ip: string; labelKeys: readonly string[] }>;

/** A datapath that confirms only when told to, call by call. */
class HeldDatapath implements FqdnDatapath {
  readonly waiting: Array<() => void> = [];
  setIpSelectors(_changes: Call): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }
}

const POLICY = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: fqdn}
spec:
  endpointSelector: {matchLabels: {class: mediabot}}
  egress:
  - toFQDNs: [{matchPattern: "*.example.com"}]
`;

async function manager(dp: HeldDatapath, now?: () => number): Promise<NameManager> {
  const nm = new NameManager({ datapath: dp, maxDelayMs: 100, ...(now ? { now } : {}) });
  const r = loadPolicyText(POLICY, 'p.yaml');
  expect(r.problems).toEqual([]);
  await nm.setSelectors(policyFqdnSelectors(r.policies));
  return nm;
}

beforeEach(() => {
  vi.useFakeTimers({ now: Date.UTC(2026, 0, 1) });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('NameManager: the max delay, one timer for all held answers', () => {
  it('an answer a proxy worker already released (released: true) is learned and pushed, but not held: no timeout counted', async () => {
    const dp = new HeldDatapath();
    const nm = await manager(dp);
    const r = await nm.onAnswer({ endpointId: 1, qname: 'a.example.com', ips: ['10.1.0.1'], ttl: 60 }, true);
    expect(r).toEqual({ newIps: 1, timedOut: false });
    expect(dp.waiting.length).toBe(1); // the push went out, unconfirmed
    await vi.advanceTimersByTimeAsync(500);
    expect(nm.stats()).toMatchObject({ timeouts: 0, selectedIps: 1 });
  });

  it('releases each unconfirmed answer its own delay after it came, and a confirmed one at once', async () => {
    const dp = new HeldDatapath();
    const nm = await manager(dp);
    const released: Record<string, { at: number; timedOut: boolean }> = {};
    const start = Date.now();
    const ask = (name: string, ip: string): void => {
      void nm.onAnswer({ endpointId: 1, qname: `${name}.example.com`, ips: [ip], ttl: 60 }).then((r) => {
        released[name] = { at: Date.now() - start, timedOut: r.timedOut };
      });
    };
    ask('a', '10.1.0.1');
    await vi.advanceTimersByTimeAsync(30);
    ask('b', '10.1.0.2');
    await vi.advanceTimersByTimeAsync(30);
    ask('c', '10.1.0.3');
    await vi.advanceTimersByTimeAsync(10);
    // c's push is confirmed: c goes at once, a and b stay held.
    dp.waiting[2]!();
    await vi.advanceTimersByTimeAsync(0);
    expect(released).toEqual({ c: { at: 70, timedOut: false } });
    await vi.advanceTimersByTimeAsync(29);
    expect(released.a).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(released.a).toEqual({ at: 100, timedOut: true });
    expect(released.b).toBeUndefined();
    await vi.advanceTimersByTimeAsync(29);
    expect(released.b).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(released.b).toEqual({ at: 130, timedOut: true });
    expect(nm.stats().timeouts).toBe(2);
  });

  it('a clock that stands still does not hold an answer past its delay', async () => {
    const dp = new HeldDatapath();
    const frozen = Date.now();
    const nm = await manager(dp, () => frozen);
    let timedOut: boolean | null = null;
    void nm.onAnswer({ endpointId: 1, qname: 'a.example.com', ips: ['10.1.0.1'], ttl: 60 }).then((r) => (timedOut = r.timedOut));
    await vi.advanceTimersByTimeAsync(100);
    expect(timedOut).toBe(true);
  });
});
