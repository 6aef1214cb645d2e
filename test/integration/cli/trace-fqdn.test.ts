/**
 * issue-8 `policy trace --dst-cidr IP --dst-fqdn NAME`: the flow is judged as if NAME had resolved
 * to IP through an allowed lookup, so toFQDNs rules can be traced without a lab. The mediabot
 * reference policies (deploy/lab/mediabot/), whose live outcomes the mediabot demo checks.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, json, membrane } from './run-cli.js';

beforeAll(() => assertBuilt());

const MATCHNAME = 'deploy/lab/mediabot/dns-matchname.yaml';
const PATTERN = 'deploy/lab/mediabot/dns-pattern.yaml';
const PORT = 'deploy/lab/mediabot/dns-port.yaml';

function trace(policy: string, name: string, dport: number): { verdict: string; status: number } {
  const r = membrane(['policy', 'trace', '--policy', policy, '--src', 'org=empire,class=mediabot', '--dst-cidr', '10.78.200.20', '--dst-fqdn', name, '--dport', String(dport), '-o', 'json']);
  return { verdict: (json(r) as { verdict: string }).verdict, status: r.status ?? -1 };
}

describe('issue-8 policy trace --dst-fqdn', () => {
  it('matchName api.github.com: api allowed, support denied (exit 1)', () => {
    expect(trace(MATCHNAME, 'api.github.com', 443)).toEqual({ verdict: 'allowed', status: 0 });
    expect(trace(MATCHNAME, 'support.github.com', 443)).toEqual({ verdict: 'denied', status: 1 });
  });

  it('matchPattern *.github.com: api and support allowed, github.com denied; names in any case', () => {
    expect(trace(PATTERN, 'support.github.com', 443).verdict).toBe('allowed');
    expect(trace(PATTERN, 'API.GitHub.com.', 443).verdict).toBe('allowed');
    expect(trace(PATTERN, 'github.com', 443).verdict).toBe('denied');
  });

  it('port 443 only: github.com allowed on 443, support.github.com denied on 80', () => {
    expect(trace(PORT, 'github.com', 443).verdict).toBe('allowed');
    expect(trace(PORT, 'support.github.com', 80).verdict).toBe('denied');
  });

  it('the same address without a name is only a world address: denied', () => {
    const r = membrane(['policy', 'trace', '--policy', PATTERN, '--src', 'org=empire,class=mediabot', '--dst-cidr', '10.78.200.20', '--dport', '443']);
    expect(r.status).toBe(1);
  });

  it('usage: --dst-fqdn needs --dst-cidr, and one address, not a prefix (exit 2)', () => {
    const a = membrane(['policy', 'trace', '--policy', PATTERN, '--src', 'org=empire,class=mediabot', '--dst-fqdn', 'api.github.com', '--dport', '443']);
    expect(a.status).toBe(2);
    expect(a.stderr).toContain('--dst-fqdn needs --dst-cidr');
    const b = membrane(['policy', 'trace', '--policy', PATTERN, '--src', 'org=empire,class=mediabot', '--dst-cidr', '10.78.200.0/24', '--dst-fqdn', 'api.github.com', '--dport', '443']);
    expect(b.status).toBe(2);
    expect(b.stderr).toContain('not the prefix 10.78.200.0/24');
  });

  it('usage: --dst-fqdn is a DNS name (Cilium\'s matchName characters and length), or exit 2 naming it', () => {
    for (const [name, text] of [
      ['bad name!', 'Invalid characters in MatchName'],
      ['*.github.com', 'Invalid characters in MatchName'],
      [`${'a'.repeat(60)}.`.repeat(5), 'must be at most 255 characters'],
    ] as const) {
      const r = membrane(['policy', 'trace', '--policy', PATTERN, '--src', 'org=empire,class=mediabot', '--dst-cidr', '10.78.200.20', '--dst-fqdn', name, '--dport', '443']);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`--dst-fqdn ${JSON.stringify(name)}: ${text}`);
    }
  });

  it('--proto in any case judges the same flow (udp is UDP); an unknown protocol exits 2', () => {
    const args = (proto: string): string[] => ['policy', 'trace', '--policy', PORT, '--src', 'org=empire,class=mediabot', '--dst-cidr', '10.78.200.20', '--dst-fqdn', 'github.com', '--dport', '443', '--proto', proto, '-o', 'json'];
    const lower = membrane(args('tcp'));
    expect(lower.status).toBe(0);
    expect((json(lower) as { verdict: string }).verdict).toBe('allowed');
    expect((json(membrane(args('udp'))) as { verdict: string }).verdict).toBe((json(membrane(args('UDP'))) as { verdict: string }).verdict);
    const bad = membrane(args('quic'));
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('Allowed choices are TCP, UDP, SCTP, ICMP');
  });
});
