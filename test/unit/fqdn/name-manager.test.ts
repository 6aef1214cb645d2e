/**
 * The name manager: answers become fqdn labels of IPs, each answer held until the datapath has
 * its IPs (or the max delay passed), only changed IPs pushed, GC with zombies, restart.
 *
 * The datapath is an injected port: `RecordingDatapath` records every `setIpSelectors` call and
 * acknowledges it when the test says so, like ipcache + policy maps that finish writing later.
 * Time is vitest's fake timers (the clock and the max-delay timer).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NameManager, SelectorIndex, DATAPATH_TIMEOUT_WARNING, type FqdnDatapath } from '../../../src/fqdn/index.js';
import { loadPolicyText, policyFqdnSelectors, type FqdnSelectorInfo } from '../../../src/policy/index.js';

type Call = ReadonlyArray<{ ip: string; labelKeys: readonly string[] }>;

class RecordingDatapath implements FqdnDatapath {
  readonly calls: Call[] = [];
  /** ip → label keys the datapath holds (after acknowledgement). */
  readonly state = new Map<string, readonly string[]>();
  private waiting: { call: Call; resolve(): void; reject(e: Error): void }[] = [];
  private readonly auto: boolean;
  constructor(auto = true) {
    this.auto = auto;
  }
  setIpSelectors(changes: Call): Promise<void> {
    const call = changes.map((c) => ({ ip: c.ip, labelKeys: [...c.labelKeys] }));
    this.calls.push(call);
    if (this.auto) {
      this.apply(call);
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => this.waiting.push({ call, resolve, reject }));
  }
  /** Applies and acknowledges the oldest waiting call. */
  ack(): void {
    const w = this.waiting.shift();
    if (!w) throw new Error('no call waiting');
    this.apply(w.call);
    w.resolve();
  }
  fail(): void {
    this.waiting.shift()?.reject(new Error('map full'));
  }
  private apply(call: Call): void {
    for (const c of call) {
      if (c.labelKeys.length) this.state.set(c.ip, c.labelKeys);
      else this.state.delete(c.ip);
    }
  }
}

function logger(): { warn: ReturnType<typeof vi.fn>; error: ReturnType<typeof vi.fn> } & Record<string, unknown> {
  return { warn: vi.fn(), error: vi.fn(), info: vi.fn(), debug: vi.fn() };
}

/** The selectors of a real policy file, as the agent derives them. */
function selectorsOf(yaml: string): FqdnSelectorInfo[] {
  const r = loadPolicyText(yaml, 'test.yaml');
  if (r.problems.length) throw new Error(JSON.stringify(r.problems));
  return policyFqdnSelectors(r.policies);
}

const MEDIABOT = (peers: string): string => `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: { name: fqdn }
spec:
  endpointSelector: { matchLabels: { org: empire, class: mediabot } }
  egress:
  - toFQDNs:
${peers}
  - toEndpoints:
    - matchLabels: { "k8s:io.kubernetes.pod.namespace": kube-system, "k8s:k8s-app": kube-dns }
    toPorts:
    - ports: [{ port: "53", protocol: ANY }]
      rules: { dns: [{ matchPattern: "*" }] }
`;

const START = Date.UTC(2026, 0, 1);

beforeEach(() => {
  vi.useFakeTimers({ now: START });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('NameManager: ordering (answer released only when the datapath has its IPs)', () => {
  it('holds an answer until the datapath acknowledges its new IPs', async () => {
    const dp = new RecordingDatapath(false);
    const nm = new NameManager({ datapath: dp, now: Date.now });
    await nmSetSelectors(nm, dp, selectorsOf(MEDIABOT('    - matchName: api.github.com')));
    let released = false;
    const answer = nm.onAnswer({ endpointId: 7, qname: 'API.GitHub.com', ips: ['10.100.0.10'], ttl: 60 }).then((r) => {
      released = true;
      return r;
    });
    await vi.advanceTimersByTimeAsync(50);
    expect(released).toBe(false);
    expect(dp.calls.at(-1)).toEqual([{ ip: '10.100.0.10', labelKeys: ['api.github.com.'] }]);
    dp.ack();
    await expect(answer).resolves.toEqual({ newIps: 1, timedOut: false });
    expect(dp.state.get('10.100.0.10')).toEqual(['api.github.com.']);
  });

  it('a second answer for IPs still being pushed waits for that push too', async () => {
    const dp = new RecordingDatapath(false);
    const nm = new NameManager({ datapath: dp, now: Date.now });
    await nmSetSelectors(nm, dp, selectorsOf(MEDIABOT('    - matchName: api.github.com')));
    const first = nm.onAnswer({ endpointId: 7, qname: 'api.github.com', ips: ['10.100.0.10'], ttl: 60 });
    let secondDone = false;
    const second = nm.onAnswer({ endpointId: 8, qname: 'api.github.com', ips: ['10.100.0.10'], ttl: 60 }).then((r) => {
      secondDone = true;
      return r;
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(dp.calls).toHaveLength(1);
    expect(secondDone).toBe(false);
    dp.ack();
    await expect(first).resolves.toEqual({ newIps: 1, timedOut: false });
    await expect(second).resolves.toEqual({ newIps: 0, timedOut: false });
  });

  it('releases after --tofqdns-proxy-response-max-delay with Cilium\'s warning and a counted timeout; the push goes on', async () => {
    const dp = new RecordingDatapath(false);
    const log = logger();
    const nm = new NameManager({ datapath: dp, now: Date.now, maxDelayMs: 100, log: log as never });
    await nmSetSelectors(nm, dp, selectorsOf(MEDIABOT('    - matchPattern: "*.github.com"')));
    const answer = nm.onAnswer({ endpointId: 7, qname: 'support.github.com', ips: ['10.100.0.11'], ttl: 60 });
    await vi.advanceTimersByTimeAsync(99);
    expect(nm.stats().timeouts).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    await expect(answer).resolves.toEqual({ newIps: 1, timedOut: true });
    expect(nm.stats().timeouts).toBe(1);
    expect(log.warn).toHaveBeenCalledWith(expect.objectContaining({ qname: 'support.github.com', maxDelayMs: 100 }), DATAPATH_TIMEOUT_WARNING);
    dp.ack();
    await vi.advanceTimersByTimeAsync(0);
    expect(dp.state.get('10.100.0.11')).toEqual(['*.github.com.']);
  });

  it('an answer whose IPs are already selected is released without a datapath call', async () => {
    const dp = new RecordingDatapath();
    const nm = new NameManager({ datapath: dp, now: Date.now });
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchName: api.github.com')));
    await nm.onAnswer({ endpointId: 7, qname: 'api.github.com', ips: ['10.100.0.10'], ttl: 60 });
    const calls = dp.calls.length;
    await expect(nm.onAnswer({ endpointId: 7, qname: 'api.github.com.', ips: ['10.100.0.10'], ttl: 60 })).resolves.toEqual({ newIps: 0, timedOut: false });
    expect(dp.calls).toHaveLength(calls);
  });

  it('a failed datapath update is counted and logged, and retried on the next answer', async () => {
    const dp = new RecordingDatapath(false);
    const log = logger();
    const nm = new NameManager({ datapath: dp, now: Date.now, log: log as never });
    const sel = selectorsOf(MEDIABOT('    - matchName: api.github.com'));
    const s = nm.setSelectors(sel);
    await s;
    const a = nm.onAnswer({ endpointId: 7, qname: 'api.github.com', ips: ['10.100.0.10'], ttl: 60 });
    await vi.advanceTimersByTimeAsync(0);
    dp.fail();
    await expect(a).resolves.toEqual({ newIps: 1, timedOut: false });
    expect(nm.stats().datapathFailures).toBe(1);
    expect(log.error).toHaveBeenCalled();
    const b = nm.onAnswer({ endpointId: 7, qname: 'api.github.com', ips: ['10.100.0.10'], ttl: 60 });
    await vi.advanceTimersByTimeAsync(0);
    expect(dp.calls.at(-1)).toEqual([{ ip: '10.100.0.10', labelKeys: ['api.github.com.'] }]);
    dp.ack();
    await b;
    expect(dp.state.get('10.100.0.10')).toEqual(['api.github.com.']);
  });
});

describe('NameManager: labels', () => {
  it('only names a selector admits get labels; an unselected name teaches nothing to the datapath', async () => {
    const dp = new RecordingDatapath();
    const nm = new NameManager({ datapath: dp, now: Date.now });
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchName: api.github.com')));
    await expect(nm.onAnswer({ endpointId: 7, qname: 'support.github.com', ips: ['10.100.0.11'], ttl: 60 })).resolves.toEqual({ newIps: 0, timedOut: false });
    expect(dp.calls).toEqual([]);
    expect(nm.cacheList().map((e) => e.fqdn)).toEqual(['support.github.com.']);
  });

  it('an IP shared by several names carries the union of their selectors\' keys', async () => {
    const dp = new RecordingDatapath();
    const nm = new NameManager({ datapath: dp, now: Date.now });
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchName: github.com\n    - matchPattern: "*.github.com"')));
    await nm.onAnswer({ endpointId: 7, qname: 'github.com', ips: ['10.100.0.1'], ttl: 60 });
    await nm.onAnswer({ endpointId: 7, qname: 'api.github.com', ips: ['10.100.0.1', '10.100.0.2'], ttl: 60 });
    expect(dp.state.get('10.100.0.1')).toEqual(['*.github.com.', 'github.com.']);
    expect(dp.state.get('10.100.0.2')).toEqual(['*.github.com.']);
    expect(nm.selectionOf('10.100.0.1')).toEqual({ names: ['api.github.com.', 'github.com.'], labelKeys: ['*.github.com.', 'github.com.'] });
  });

  it('a policy change relabels cached IPs and pushes only the IPs whose labels changed', async () => {
    const dp = new RecordingDatapath();
    const nm = new NameManager({ datapath: dp, now: Date.now });
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchName: api.github.com')));
    await nm.onAnswer({ endpointId: 7, qname: 'api.github.com', ips: ['10.100.0.10'], ttl: 60 });
    await nm.onAnswer({ endpointId: 7, qname: 'support.github.com', ips: ['10.100.0.11'], ttl: 60 });
    await nm.onAnswer({ endpointId: 7, qname: 'github.com', ips: ['10.100.0.12'], ttl: 60 });
    dp.calls.length = 0;
    // The reference's dns-pattern.yaml: *.github.com now selects support too; github.com stays out.
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchPattern: "*.github.com"')));
    expect(dp.calls).toEqual([
      [
        { ip: '10.100.0.10', labelKeys: ['*.github.com.'] },
        { ip: '10.100.0.11', labelKeys: ['*.github.com.'] },
      ],
    ]);
    dp.calls.length = 0;
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchPattern: "*.github.com"')));
    expect(dp.calls).toEqual([]);
    await nm.setSelectors([]);
    expect(dp.calls.at(-1)).toEqual([
      { ip: '10.100.0.10', labelKeys: [] },
      { ip: '10.100.0.11', labelKeys: [] },
    ]);
    expect(dp.state.size).toBe(0);
  });

  it('relabelling a large cache leaves the event loop free between chunks of 1024 IPs', async () => {
    vi.useRealTimers();
    const dp = new RecordingDatapath();
    const nm = new NameManager({ datapath: dp });
    for (let i = 0; i < 3000; i++) await nm.onAnswer({ endpointId: 7, qname: `n${i}.example.com`, ips: [`10.5.${i >> 8}.${i & 255}`], ttl: 600 });
    expect(dp.calls).toEqual([]);
    const done = nm.setSelectors(selectorsOf(MEDIABOT('    - matchPattern: "*.example.com"')));
    const callsSeenByOtherWork = await new Promise<number>((resolve) => setImmediate(() => resolve(dp.calls.length)));
    await done;
    expect(callsSeenByOtherWork).toBeGreaterThanOrEqual(1);
    expect(callsSeenByOtherWork).toBeLessThan(3);
    expect(dp.calls.map((c) => c.length)).toEqual([1024, 1024, 952]);
    expect(dp.state.size).toBe(3000);
  });

  it('an answer costs O(new IPs): one call with only the new IPs, whatever the cache holds', async () => {
    const dp = new RecordingDatapath();
    const nm = new NameManager({ datapath: dp, now: Date.now });
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchPattern: "*.example.com"')));
    for (let i = 0; i < 500; i++) await nm.onAnswer({ endpointId: 7, qname: `n${i}.example.com`, ips: [`10.2.${i >> 8}.${i & 255}`], ttl: 600 });
    dp.calls.length = 0;
    await nm.onAnswer({ endpointId: 7, qname: 'new.example.com', ips: ['10.3.0.1', '10.3.0.2'], ttl: 600 });
    expect(dp.calls).toEqual([
      [
        { ip: '10.3.0.1', labelKeys: ['*.example.com.'] },
        { ip: '10.3.0.2', labelKeys: ['*.example.com.'] },
      ],
    ]);
  });

  it('ignores an answer for an invalid endpoint id or without valid IPs', async () => {
    const dp = new RecordingDatapath();
    const nm = new NameManager({ datapath: dp, now: Date.now, log: logger() as never });
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchPattern: "*"')));
    await expect(nm.onAnswer({ endpointId: -1, qname: 'a.example', ips: ['10.0.0.1'], ttl: 60 })).resolves.toEqual({ newIps: 0, timedOut: false });
    await expect(nm.onAnswer({ endpointId: 1, qname: 'a.example', ips: ['999.0.0.1'], ttl: 60 })).resolves.toEqual({ newIps: 0, timedOut: false });
    expect(dp.calls).toEqual([]);
    expect(nm.stats()).toMatchObject({ names: 0, ips: 0 });
  });
});

describe('NameManager: GC (TTL, min-TTL, zombies)', () => {
  it('an expired name loses its IPs at GC unless a connection is alive, then loses them when it ends', async () => {
    const dp = new RecordingDatapath();
    const alive = new Set<string>();
    const nm = new NameManager({ datapath: dp, now: Date.now, isAlive: (ip) => alive.has(ip) });
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchPattern: "*.github.com"')));
    await nm.onAnswer({ endpointId: 7, qname: 'api.github.com', ips: ['10.100.0.10'], ttl: 30 });
    await nm.onAnswer({ endpointId: 7, qname: 'support.github.com', ips: ['10.100.0.11'], ttl: 30 });
    alive.add('10.100.0.10');
    vi.advanceTimersByTime(29_000);
    await nm.gc();
    expect([...dp.state.keys()].sort()).toEqual(['10.100.0.10', '10.100.0.11']);
    vi.advanceTimersByTime(2_000);
    dp.calls.length = 0;
    await nm.gc();
    expect(dp.calls).toEqual([[{ ip: '10.100.0.11', labelKeys: [] }]]);
    expect(nm.stats()).toMatchObject({ names: 0, zombies: 1, selectedIps: 1 });
    expect(nm.cacheList()).toMatchObject([{ endpointId: 7, source: 'connection', fqdn: 'api.github.com.', ips: ['10.100.0.10'] }]);
    alive.clear();
    await nm.gc();
    expect(dp.state.size).toBe(0);
    expect(nm.stats()).toMatchObject({ names: 0, ips: 0, zombies: 0, selectedIps: 0 });
  });

  it('--tofqdns-min-ttl keeps a short-TTL answer selected for at least min-ttl', async () => {
    const dp = new RecordingDatapath();
    const nm = new NameManager({ datapath: dp, now: Date.now, minTtlSeconds: 3600 });
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchName: api.github.com')));
    await nm.onAnswer({ endpointId: 7, qname: 'api.github.com', ips: ['10.100.0.10'], ttl: 0 });
    vi.advanceTimersByTime(3_599_000);
    await nm.gc();
    expect(dp.state.get('10.100.0.10')).toEqual(['api.github.com.']);
    vi.advanceTimersByTime(2_000);
    await nm.gc();
    expect(dp.state.has('10.100.0.10')).toBe(false);
  });

  it('--tofqdns-endpoint-max-ip-per-hostname: the oldest IP of a name goes at the next GC when unused', async () => {
    const dp = new RecordingDatapath();
    const nm = new NameManager({ datapath: dp, now: Date.now, maxIpsPerHostname: 2 });
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchName: s3.example.com')));
    for (const ip of ['10.4.0.1', '10.4.0.2', '10.4.0.3']) {
      await nm.onAnswer({ endpointId: 7, qname: 's3.example.com', ips: [ip], ttl: 60 });
      vi.advanceTimersByTime(1000);
    }
    expect(dp.state.size).toBe(3);
    await nm.gc();
    expect([...dp.state.keys()].sort()).toEqual(['10.4.0.2', '10.4.0.3']);
  });
});

describe('NameManager: restart', () => {
  it('snapshot/restore keeps learned names; setSelectors afterwards pushes only what changed meanwhile', async () => {
    const dp = new RecordingDatapath();
    const a = new NameManager({ datapath: dp, now: Date.now });
    const sel = selectorsOf(MEDIABOT('    - matchPattern: "*.github.com"'));
    await a.setSelectors(sel);
    await a.onAnswer({ endpointId: 7, qname: 'api.github.com', ips: ['10.100.0.10'], ttl: 3600 });
    await a.onAnswer({ endpointId: 7, qname: 'support.github.com', ips: ['10.100.0.11'], ttl: 5 });
    const saved = JSON.stringify(a.snapshot());
    vi.advanceTimersByTime(60_000);
    dp.calls.length = 0;
    const b = new NameManager({ datapath: dp, now: Date.now });
    b.restore(JSON.parse(saved));
    await b.setSelectors(sel);
    // Both were in the pinned maps already: nothing to push yet (support.github.com is a zombie
    // until the next GC finds no connection).
    expect(dp.calls).toEqual([]);
    expect(b.cacheList().map((e) => `${e.source} ${e.fqdn}`)).toEqual(['lookup api.github.com.', 'connection support.github.com.']);
    await b.gc();
    expect(dp.calls).toEqual([[{ ip: '10.100.0.11', labelKeys: [] }]]);
    await expect(b.onAnswer({ endpointId: 7, qname: 'api.github.com', ips: ['10.100.0.10'], ttl: 3600 })).resolves.toEqual({ newIps: 0, timedOut: false });
  });

  it('a malformed snapshot is refused and changes nothing', async () => {
    const dp = new RecordingDatapath();
    const nm = new NameManager({ datapath: dp, now: Date.now });
    await nm.setSelectors(selectorsOf(MEDIABOT('    - matchName: api.github.com')));
    await nm.onAnswer({ endpointId: 7, qname: 'api.github.com', ips: ['10.100.0.10'], ttl: 60 });
    const before = JSON.stringify(nm.snapshot());
    expect(() => nm.restore({ version: 1, cache: { version: 1, endpoints: 'x' }, selected: [] })).toThrow(/endpoints: expected an array/);
    expect(() => nm.restore({ version: 1, cache: { version: 1, endpoints: [] }, selected: [{ ip: 'x', labelKeys: [] }] })).toThrow(/selected\[0\]\.ip/);
    expect(JSON.stringify(nm.snapshot())).toBe(before);
  });
});

describe('SelectorIndex', () => {
  it('selectorsFor gives the keys of every selector admitting the name', () => {
    const idx = new SelectorIndex(selectorsOf(MEDIABOT('    - matchName: api.github.com\n    - matchPattern: "*.github.com"\n    - matchPattern: "**.com"\n    - matchPattern: "*"')));
    expect(idx.selectorsFor('API.github.com')).toEqual(['*', '**.com.', '*.github.com.', 'api.github.com.']);
    expect(idx.selectorsFor('github.com.')).toEqual(['*', '**.com.']);
    expect(idx.selectorsFor('example.org')).toEqual(['*']);
    expect(new SelectorIndex([]).selectorsFor('a.b')).toEqual([]);
  });
});

/** setSelectors with a datapath that acknowledges by hand: nothing is cached yet, so no call waits. */
async function nmSetSelectors(nm: NameManager, dp: RecordingDatapath, sel: FqdnSelectorInfo[]): Promise<void> {
  await nm.setSelectors(sel);
  expect(dp.calls).toEqual([]);
}
