/**
 * The DNS cache with an injected clock: TTL and min-TTL, the per-name cap, reverse lookups,
 * zombies kept while a connection lives, the bounds, and snapshot/restore.
 * Semantics: cilium/cilium pkg/fqdn/cache.go.
 */
import { describe, expect, it } from 'vitest';
import { DnsCache } from '../../../src/fqdn/index.js';
import { isMembraneError } from '../../../src/errors/index.js';

function clock(start = Date.UTC(2026, 0, 1)): { now: () => number; advance(ms: number): void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

const none = (): boolean => false;

describe('DnsCache: TTL', () => {
  it('a refresh handed over after it came (a proxy worker sends them once a second) counts its TTL from when it came, never from the future', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now });
    const t0 = c.now();
    cache.update(1, 'a.example', ['10.0.0.1'], 60);
    c.advance(900);
    cache.update(1, 'a.example', ['10.0.0.1'], 60, t0 + 400);
    expect(cache.entries()[0]).toMatchObject({ lookupTime: t0 + 400, expirationTime: t0 + 400 + 60_000 });
    cache.update(1, 'b.example', ['10.0.0.2'], 60, t0 + 10_000_000);
    expect(cache.entries({ name: 'b.example' })[0]).toMatchObject({ lookupTime: t0 + 900 });
    // An older refresh never shortens what a later answer gave.
    cache.update(1, 'a.example', ['10.0.0.1'], 60, t0);
    expect(cache.entries({ name: 'a.example' })[0]).toMatchObject({ expirationTime: t0 + 400 + 60_000 });
  });

  it('keeps an answer for its TTL and collects it after (no connection: gone)', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now });
    cache.update(1, 'API.github.com', ['10.0.0.1', '10.0.0.2'], 30);
    expect(cache.lookupName('api.github.com.')).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(cache.lookupIp('10.0.0.1')).toEqual(['api.github.com.']);
    c.advance(30_000);
    cache.gc(none);
    expect(cache.lookupName('api.github.com')).toEqual(['10.0.0.1', '10.0.0.2']);
    c.advance(1);
    expect(cache.lookupName('api.github.com')).toEqual([]);
    const { changedIps } = cache.gc(none);
    expect([...changedIps].sort()).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(cache.namesOfIp('10.0.0.1')).toEqual([]);
    expect(cache.counts()).toEqual({ names: 0, ips: 0, zombies: 0 });
  });

  it('raises the TTL to --tofqdns-min-ttl', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now, minTtlSeconds: 3600 });
    cache.update(1, 'a.example', ['10.0.0.1'], 5);
    expect(cache.entries()[0]).toMatchObject({ ttl: 3600, expirationTime: c.now() + 3_600_000 });
    c.advance(600_000);
    cache.gc(none);
    expect(cache.lookupName('a.example')).toEqual(['10.0.0.1']);
  });

  it('keeps the later expiry of an IP answered twice (Cilium: latest-expiring lookup per IP)', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now });
    cache.update(1, 'a.example', ['10.0.0.1'], 100);
    c.advance(10_000);
    cache.update(1, 'a.example', ['10.0.0.1'], 10);
    c.advance(50_000);
    cache.gc(none);
    expect(cache.lookupName('a.example')).toEqual(['10.0.0.1']);
  });

  it('ignores invalid IPs and names; canonicalises IPv6', () => {
    const cache = new DnsCache({ now: clock().now });
    cache.update(1, 'a.example', ['not-an-ip', '2001:DB8:0:0::1', '10.0.0.300'], 60);
    cache.update(1, 'x'.repeat(300), ['10.0.0.1'], 60);
    expect(cache.lookupName('a.example')).toEqual(['2001:db8::1']);
    expect(cache.counts()).toEqual({ names: 1, ips: 1, zombies: 0 });
  });
});

describe('DnsCache: per endpoint and global', () => {
  it('answers by name per endpoint or across endpoints, and by IP across endpoints', () => {
    const cache = new DnsCache({ now: clock().now });
    cache.update(1, 'a.example', ['10.0.0.1'], 60);
    cache.update(2, 'a.example', ['10.0.0.2'], 60);
    cache.update(2, 'b.example', ['10.0.0.1'], 60);
    expect(cache.lookupName('a.example', 1)).toEqual(['10.0.0.1']);
    expect(cache.lookupName('a.example', 2)).toEqual(['10.0.0.2']);
    expect(cache.lookupName('a.example')).toEqual(['10.0.0.1', '10.0.0.2']);
    expect(cache.lookupIp('10.0.0.1')).toEqual(['a.example.', 'b.example.']);
    expect(cache.entries({ endpointId: 2 }).map((e) => `${e.endpointId} ${e.fqdn} ${e.ips.join(',')}`)).toEqual([
      '2 a.example. 10.0.0.2',
      '2 b.example. 10.0.0.1',
    ]);
    expect(cache.entries({ name: 'A.EXAMPLE' }).map((e) => e.endpointId)).toEqual([1, 2]);
  });

  it('an IP stays while another endpoint still holds the name', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now });
    cache.update(1, 'a.example', ['10.0.0.1'], 10);
    cache.update(2, 'a.example', ['10.0.0.1'], 100);
    c.advance(20_000);
    const { changedIps } = cache.gc(none);
    expect([...changedIps]).toEqual([]);
    expect(cache.namesOfIp('10.0.0.1')).toEqual(['a.example.']);
    expect(cache.entries().map((e) => e.endpointId)).toEqual([2]);
  });
});

describe('DnsCache: a removed endpoint', () => {
  it('forgetEndpoint drops its lookups and zombies; IPs another endpoint still holds keep that endpoint\'s names', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now, maxIpsPerHostname: 1 });
    cache.update(1, 'a.example', ['10.0.0.1'], 60);
    cache.update(1, 'b.example', ['10.0.0.2'], 60);
    cache.update(1, 'b.example', ['10.0.0.3'], 120); // evicts .2 into a zombie
    cache.update(2, 'a.example', ['10.0.0.1'], 60);
    expect(cache.entries({ endpointId: 1 }).some((e) => e.source === 'connection')).toBe(true);
    const { changedIps } = cache.forgetEndpoint(1);
    // .2 and .3 lose their only name; .1 is still a.example's for endpoint 2.
    expect([...changedIps].sort()).toEqual(['10.0.0.2', '10.0.0.3']);
    expect(cache.entries({ endpointId: 1 })).toEqual([]);
    expect(cache.namesOfIp('10.0.0.2')).toEqual([]);
    expect(cache.namesOfIp('10.0.0.1')).toEqual(['a.example.']);
    // A new endpoint with the same id starts with nothing.
    expect(cache.lookupIp('10.0.0.1', 1)).toEqual([]);
    expect(cache.forgetEndpoint(1).changedIps.size).toBe(0);
  });
});

describe('DnsCache: --tofqdns-endpoint-max-ip-per-hostname', () => {
  it('evicts the earliest-expiring IPs of a name past the cap; they live on as zombies until GC finds them unused', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now, maxIpsPerHostname: 2 });
    cache.update(1, 's3.example', ['10.0.0.1'], 10);
    c.advance(1000);
    cache.update(1, 's3.example', ['10.0.0.2'], 60);
    c.advance(1000);
    const { changedIps } = cache.update(1, 's3.example', ['10.0.0.3'], 60);
    expect(cache.lookupName('s3.example', 1)).toEqual(['10.0.0.2', '10.0.0.3']);
    // Evicted, but still selected: a connection to it may be alive.
    expect(cache.namesOfIp('10.0.0.1')).toEqual(['s3.example.']);
    expect([...changedIps]).toEqual(['10.0.0.3']);
    expect(cache.entries().filter((e) => e.source === 'connection').map((e) => e.ips[0])).toEqual(['10.0.0.1']);
    cache.gc((ip) => ip === '10.0.0.1');
    expect(cache.namesOfIp('10.0.0.1')).toEqual(['s3.example.']);
    cache.gc(none);
    expect(cache.namesOfIp('10.0.0.1')).toEqual([]);
  });

  it('the cap is per endpoint', () => {
    const cache = new DnsCache({ now: clock().now, maxIpsPerHostname: 1 });
    cache.update(1, 'a.example', ['10.0.0.1'], 60);
    cache.update(2, 'a.example', ['10.0.0.2'], 60);
    expect(cache.lookupName('a.example')).toEqual(['10.0.0.1', '10.0.0.2']);
  });
});

describe('DnsCache: zombies (connections outliving the TTL)', () => {
  it('keeps an expired IP while isAlive says a connection uses it, drops it once it ends', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now });
    cache.update(1, 'api.github.com', ['10.0.0.1'], 5);
    cache.update(1, 'support.github.com', ['10.0.0.2'], 5);
    c.advance(10_000);
    let alive = new Set(['10.0.0.1']);
    let changed = cache.gc((ip) => alive.has(ip));
    expect([...changed.changedIps]).toEqual(['10.0.0.2']);
    expect(cache.namesOfIp('10.0.0.1')).toEqual(['api.github.com.']);
    expect(cache.lookupIp('10.0.0.1')).toEqual([]);
    expect(cache.entries()).toMatchObject([{ source: 'connection', fqdn: 'api.github.com.', ips: ['10.0.0.1'], lookupTime: c.now() }]);
    c.advance(60_000);
    alive = new Set();
    changed = cache.gc((ip) => alive.has(ip));
    expect([...changed.changedIps]).toEqual(['10.0.0.1']);
    expect(cache.counts()).toEqual({ names: 0, ips: 0, zombies: 0 });
  });

  it('a new lookup of the name takes the IP back from the zombies', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now });
    cache.update(1, 'a.example', ['10.0.0.1'], 5);
    c.advance(10_000);
    cache.gc(() => true);
    expect(cache.counts().zombies).toBe(1);
    cache.update(1, 'a.example', ['10.0.0.1'], 60);
    expect(cache.counts()).toEqual({ names: 1, ips: 1, zombies: 0 });
    expect(cache.entries().map((e) => e.source)).toEqual(['lookup']);
  });

  it('idle connection grace period keeps an unused zombie until it passes', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now, idleConnectionGracePeriodMs: 30_000 });
    cache.update(1, 'a.example', ['10.0.0.1'], 5);
    c.advance(10_000);
    cache.gc(none);
    expect(cache.namesOfIp('10.0.0.1')).toEqual(['a.example.']);
    c.advance(30_000);
    cache.gc(none);
    expect(cache.namesOfIp('10.0.0.1')).toEqual([]);
  });

  it('a zombie lives while another zombie of the same name has a live connection (Cilium aliveNames)', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now });
    cache.update(1, 'a.example', ['10.0.0.1', '10.0.0.2'], 5);
    c.advance(10_000);
    cache.gc((ip) => ip === '10.0.0.1');
    expect(cache.namesOfIp('10.0.0.2')).toEqual(['a.example.']);
  });

  it('--tofqdns-max-deferred-connection-deletes bounds the zombies, evicting those never seen alive first', () => {
    const c = clock();
    // A long grace period keeps every zombie alive; only 10.0.0.2 has a live connection.
    const cache = new DnsCache({ now: c.now, maxDeferredConnectionDeletes: 1, idleConnectionGracePeriodMs: 600_000 });
    for (let i = 1; i <= 3; i++) cache.update(1, `n${i}.example`, [`10.0.0.${i}`], 5);
    c.advance(10_000);
    cache.gc((ip) => ip === '10.0.0.2');
    expect(cache.counts().zombies).toBe(1);
    expect(['10.0.0.1', '10.0.0.2', '10.0.0.3'].map((ip) => cache.namesOfIp(ip).join())).toEqual(['', 'n2.example.', '']);
  });

  it('with 0 deferred deletes an expired IP goes at once', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now, maxDeferredConnectionDeletes: 0 });
    cache.update(1, 'a.example', ['10.0.0.1'], 5);
    c.advance(10_000);
    cache.gc(() => true);
    expect(cache.namesOfIp('10.0.0.1')).toEqual([]);
  });

  it('between two GCs the zombies of an endpoint stay within twice the cap', () => {
    const cache = new DnsCache({ now: clock().now, maxIpsPerHostname: 1, maxDeferredConnectionDeletes: 10 });
    for (let i = 0; i < 200; i++) cache.update(1, 'flood.example', [`10.1.${i >> 8}.${i & 255}`], 60);
    expect(cache.counts().zombies).toBeLessThanOrEqual(20);
    expect(cache.lookupName('flood.example')).toEqual(['10.1.0.199']);
  });
});

describe('DnsCache: bounded names per endpoint', () => {
  it('past the cap the earliest-expiring names leave (a tenth at a time), their IPs kept as zombies', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now, maxNamesPerEndpoint: 10 });
    for (let i = 0; i < 10; i++) cache.update(1, `n${i}.example`, [`10.0.0.${i}`], 100 + i);
    cache.update(1, 'new.example', ['10.0.1.1'], 5);
    expect(cache.counts().names).toBe(10);
    expect(cache.lookupName('n0.example')).toEqual([]);
    expect(cache.lookupName('new.example')).toEqual(['10.0.1.1']);
    expect(cache.namesOfIp('10.0.0.0')).toEqual(['n0.example.']);
  });
});

describe('DnsCache: snapshot and restore', () => {
  it('a restart keeps learned names with their absolute expiry; already expired lookups come back as zombies', () => {
    const c = clock();
    const a = new DnsCache({ now: c.now });
    a.update(1, 'long.example', ['10.0.0.1'], 3600);
    a.update(1, 'short.example', ['10.0.0.2'], 5);
    a.update(2, 'long.example', ['2001:db8::1'], 3600);
    const snap = JSON.parse(JSON.stringify(a.snapshot())) as unknown;
    c.advance(60_000);
    const b = new DnsCache({ now: c.now });
    b.restore(snap);
    expect(b.lookupName('long.example')).toEqual(['10.0.0.1', '2001:db8::1']);
    expect(b.entries({ name: 'long.example' })[0]).toMatchObject({ expirationTime: Date.UTC(2026, 0, 1) + 3_600_000, ttl: 3600 });
    expect(b.lookupName('short.example')).toEqual([]);
    expect(b.entries({ name: 'short.example' }).map((e) => e.source)).toEqual(['connection']);
    b.gc(none);
    expect(b.namesOfIp('10.0.0.2')).toEqual([]);
    expect(b.namesOfIp('10.0.0.1')).toEqual(['long.example.']);
  });

  it('zombies survive a restart with their state', () => {
    const c = clock();
    const a = new DnsCache({ now: c.now });
    a.update(1, 'a.example', ['10.0.0.1'], 5);
    c.advance(10_000);
    a.gc(() => true);
    const b = new DnsCache({ now: c.now });
    b.restore(JSON.parse(JSON.stringify(a.snapshot())));
    expect(b.entries()).toEqual(a.entries());
  });

  it('a malformed snapshot is refused naming the field, and the cache keeps what it had', () => {
    const cache = new DnsCache({ now: clock().now });
    cache.update(1, 'keep.example', ['10.0.0.1'], 60);
    const bad = {
      version: 1,
      endpoints: [{ id: 1, lookups: [{ fqdn: 'x.example', ips: ['10.0.0.9', 'nope'], ttl: 5, 'lookup-time': '2026-01-01T00:00:00Z', 'expiration-time': '2026-01-01T00:00:05Z' }], zombies: [] }],
    };
    let err: unknown;
    try {
      cache.restore(bad);
    } catch (e) {
      err = e;
    }
    expect(isMembraneError(err, 'MEMBRANE_ERR_STATE')).toBe(true);
    expect((err as Error).message).toContain('endpoints[0].lookups[0].ips[1]: expected an IP address');
    expect(cache.lookupName('keep.example')).toEqual(['10.0.0.1']);
    expect(cache.lookupName('x.example')).toEqual([]);
    expect(() => cache.restore({ version: 2, endpoints: [] })).toThrow(/unsupported version 2/);
    expect(() => cache.restore(null)).toThrow(/\$: expected an object/);
  });
});

describe('DnsCache: IP order', () => {
  it('lists IPs numerically, IPv4 before IPv6', () => {
    const cache = new DnsCache({ now: clock().now });
    cache.update(1, 'a.example', ['2001:db8::10', '10.0.0.10', '2001:db8::9', '10.0.0.9', '9.0.0.1', '::1'], 60);
    expect(cache.lookupName('a.example')).toEqual(['9.0.0.1', '10.0.0.9', '10.0.0.10', '::1', '2001:db8::9', '2001:db8::10']);
  });
});

describe('DnsCache: hostile answers stay within the bounds', () => {
  it('one answer with 5000 IPs: 1000 kept as lookups (the cap), the rest pending deletion within twice the zombie cap', () => {
    const c = clock();
    const cache = new DnsCache({ now: c.now, maxDeferredConnectionDeletes: 1000 });
    const ips = Array.from({ length: 5000 }, (_, i) => `10.9.${i >> 8}.${i & 255}`);
    cache.update(1, 'poison.example', ips, 60);
    expect(cache.lookupName('poison.example')).toHaveLength(1000);
    expect(cache.counts().zombies).toBeLessThanOrEqual(2000);
    c.advance(1000);
    cache.gc(none);
    expect(cache.counts()).toEqual({ names: 1, ips: 1000, zombies: 0 });
  });

  it('a name at the length limit is learned, a longer one is not', () => {
    const cache = new DnsCache({ now: clock().now });
    const label = 'a'.repeat(63);
    const atLimit = `${label}.${label}.${label}.${'b'.repeat(61)}`; // 253 characters, 254 with the dot
    cache.update(1, atLimit, ['10.0.0.1'], 60);
    cache.update(1, `c${atLimit}`, ['10.0.0.2'], 60);
    expect(cache.lookupIp('10.0.0.1')).toEqual([`${atLimit}.`]);
    expect(cache.lookupIp('10.0.0.2')).toEqual([]);
  });
});

describe('issue-9 DnsCache: the timed save is built in slices', () => {
  it('snapshotJson holds what snapshot() holds, pausing between slices; a cache restored from it lists the same entries', async () => {
    const c = clock();
    const a = new DnsCache({ now: c.now });
    for (let i = 0; i < 1500; i++) a.update(1 + (i % 2), `n${i}.example`, [`10.1.${i >> 8}.${i & 255}`, `10.2.${i >> 8}.${i & 255}`], 60 + (i % 7));
    a.update(1, 'short.example', ['10.3.0.1'], 1);
    c.advance(5000);
    a.gc(() => true); // short.example's address becomes a zombie
    let pauses = 0;
    const text = await a.snapshotJson(async () => void pauses++, 256);
    expect(pauses).toBeGreaterThanOrEqual(5);
    const byId = (s: unknown) =>
      (s as { endpoints: { id: number; lookups: { fqdn: string }[]; zombies: { ip: string }[] }[] }).endpoints.map((e) => ({
        id: e.id,
        lookups: [...e.lookups].sort((x, y) => (x.fqdn < y.fqdn ? -1 : 1)),
        zombies: [...e.zombies].sort((x, y) => (x.ip < y.ip ? -1 : 1)),
      }));
    expect(byId(JSON.parse(text))).toEqual(byId(JSON.parse(JSON.stringify(a.snapshot()))));
    const b = new DnsCache({ now: c.now });
    b.restore(JSON.parse(text));
    expect(b.entries()).toEqual(a.entries());
  });

  it('names that go or come while it pauses are left out, never written twice or half', async () => {
    const c = clock();
    const a = new DnsCache({ now: c.now });
    for (let i = 0; i < 100; i++) a.update(1, `n${i}.example`, [`10.1.0.${i}`], 60);
    let step = 0;
    const text = await a.snapshotJson(async () => {
      if (step++ === 0) {
        // n99 goes (its IP's lookup expires and is collected as a zombie); a new name arrives
        a.update(1, 'late.example', ['10.9.9.9'], 60);
        c.advance(61_000);
        a.update(1, 'n0.example', ['10.1.0.0'], 60);
        a.gc(() => false);
      }
    }, 10);
    const lookups = (JSON.parse(text) as { endpoints: { lookups: { fqdn: string }[] }[] }).endpoints[0]!.lookups.map((l) => l.fqdn);
    expect(new Set(lookups).size).toBe(lookups.length);
    expect(lookups).not.toContain('late.example.');
    expect(lookups).not.toContain('n99.example.');
    expect(lookups.slice(0, 9)).toEqual(Array.from({ length: 9 }, (_, i) => `n${i}.example.`));
  });
});
