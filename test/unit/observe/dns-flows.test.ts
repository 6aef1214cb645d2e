/**
 * DNS flows as Hubble builds them (`pkg/hubble/parser/seven/dns.go`): the summaries the compact
 * printer shows, and the fields set on requests versus responses.
 */
import { describe, expect, it } from 'vitest';
import { dnsRequestFlow, dnsResponseFlow, dnsResponseSummary, emptyEndpoint, formatCompact, type DnsExchangeInput } from '../../../src/observe/index.js';

const input: DnsExchangeInput = {
  time: '2026-11-30T10:00:00.000Z',
  source: { ID: 3, identity: 41000, namespace: 'default', labels: [], pod_name: 'mediabot' },
  destination: { ID: 0, identity: 41001, namespace: 'kube-system', labels: [], pod_name: 'kube-dns' },
  ip: { source: '10.77.1.5', destination: '10.77.1.2' },
  sourcePort: 40000,
  destinationPort: 53,
  direction: 'EGRESS',
  nodeName: 'node',
  transport: 'UDP',
};

describe('DNS flows', () => {
  it('prints a request as Hubble: dns-request proxy VERDICT (DNS Query NAME TYPES)', () => {
    const f = dnsRequestFlow({ ...input, verdict: 'DROPPED', dns: { query: 'support.github.com.', qtypes: ['A'] } });
    expect(formatCompact(f)).toBe('Nov 30 10:00:00.000: default/mediabot:40000 (ID:41000) -> kube-system/kube-dns:53 (ID:41001) dns-request proxy DROPPED (DNS Query support.github.com. A)');
    expect(f.l7?.dns).toEqual({ query: 'support.github.com.', observation_source: 'proxy', qtypes: ['A'] });
    expect(f.l4).toEqual({ UDP: { source_port: 40000, destination_port: 53 } });
  });

  it('prints a response with IPs and CNAMEs, and an error code instead of the answer', () => {
    const f = dnsResponseFlow({
      ...input,
      destination: emptyEndpoint(41001),
      verdict: 'FORWARDED',
      latencyNs: 1_000_000,
      dns: { query: 'support.github.com.', ips: ['10.9.0.2', '10.9.0.3'], cnames: ['edge.cdn.test.'], ttl: 120, rcode: 0, qtypes: ['A'], rrtypes: ['CNAME', 'A', 'A'] },
    });
    expect(f.Summary).toBe('DNS Answer "10.9.0.2,10.9.0.3" CNAMEs: "edge.cdn.test." TTL: 120 (Proxy support.github.com. A)');
    expect(f.is_reply).toBe(true);
    expect(f.l4).toEqual({ UDP: { source_port: 53, destination_port: 40000 } });
    expect(dnsResponseSummary({ query: 'x.', rcode: 3, ttl: 0, qtypes: ['AAAA'], observation_source: 'proxy' })).toBe('DNS Answer RCode: Non-Existent Domain TTL: 0 (Proxy x. AAAA)');
    expect(dnsResponseSummary({ query: 'x.', rcode: 0, ttl: 5, qtypes: ['A'], observation_source: 'proxy' })).toBe('DNS Answer  TTL: 5 (Proxy x. A)');
  });
});
