/**
 * `formatCacheList`: the table `membrane fqdn cache list` prints, with the columns of
 * `cilium-dbg fqdn cache list`, fed by a real name manager's cache.
 */
import { describe, expect, it } from 'vitest';
import { NameManager } from '../../../src/fqdn/index.js';
import { cacheListJson, formatCacheList } from '../../../src/cli/fqdn-command.js';

describe('formatCacheList', () => {
  it('prints Endpoint, Source, FQDN, TTL (the answer\'s, as cilium-dbg prints it), ExpirationTime, IPs', async () => {
    let now = Date.UTC(2026, 0, 1, 12, 0, 0);
    const nm = new NameManager({ datapath: { setIpSelectors: async () => {} }, now: () => now, isAlive: () => true });
    await nm.onAnswer({ endpointId: 12, qname: 'api.github.com', ips: ['10.100.0.10', '10.100.0.9'], ttl: 300 });
    await nm.onAnswer({ endpointId: 12, qname: 'support.github.com', ips: ['10.100.0.11'], ttl: 5 });
    now += 10_000;
    await nm.gc();
    expect(formatCacheList(nm.cacheList()).split('\n')).toEqual([
      'Endpoint   Source       FQDN                  TTL   ExpirationTime             IPs',
      '12         lookup       api.github.com.       300   2026-01-01T12:05:00.000Z   10.100.0.9,10.100.0.10',
      '12         connection   support.github.com.   0     2026-01-01T12:00:05.000Z   10.100.0.11',
      '',
    ]);
  });

  it('-o json gives Cilium\'s models.DNSLookup: kebab-case fields, RFC 3339 times, a never-alive connection at Go\'s zero time, a zero ttl left out (omitempty)', async () => {
    let now = Date.UTC(2026, 0, 1, 12, 0, 0);
    const nm = new NameManager({ datapath: { setIpSelectors: async () => {} }, now: () => now, isAlive: () => false, idleConnectionGracePeriodMs: 60_000 });
    await nm.onAnswer({ endpointId: 12, qname: 'api.github.com', ips: ['10.100.0.9'], ttl: 300 });
    await nm.onAnswer({ endpointId: 12, qname: 'support.github.com', ips: ['10.100.0.11'], ttl: 5 });
    now += 10_000;
    await nm.gc();
    expect(cacheListJson(nm.cacheList())).toEqual([
      { 'endpoint-id': 12, 'expiration-time': '2026-01-01T12:05:00.000Z', fqdn: 'api.github.com.', ips: ['10.100.0.9'], 'lookup-time': '2026-01-01T12:00:00.000Z', source: 'lookup', ttl: 300 },
      { 'endpoint-id': 12, 'expiration-time': '2026-01-01T12:00:05.000Z', fqdn: 'support.github.com.', ips: ['10.100.0.11'], 'lookup-time': '0001-01-01T00:00:00.000Z', source: 'connection' },
    ]);
  });

  it('an empty cache prints the header only', () => {
    expect(formatCacheList([])).toBe('Endpoint   Source   FQDN   TTL   ExpirationTime   IPs\n');
  });
});
