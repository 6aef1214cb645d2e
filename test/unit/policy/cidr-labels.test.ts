/**
 * fqdn-apply-cost: an IPv4 address's CIDR identity labels (built from the integer address, the
 * path every learned DNS answer takes) are exactly the containing prefixes the general prefix
 * code derives, in the same order; spellings the strict parser rejects are still rejected.
 */
import { describe, expect, it } from 'vitest';
import { cidrIdentityLabels, formatLabel } from '../../../src/policy/index.js';
import { cidrLabelKey, containingPrefixes, parsePrefix } from '../../../src/policy/api/cidr.js';

const general = (text: string): string[] => {
  const p = parsePrefix(text.includes('/') ? text : `${text}/32`)!;
  return [...containingPrefixes(p).map((q) => `cidr:${cidrLabelKey(q)}`), 'reserved:world', 'reserved:world-ipv4'];
};

describe('cidrIdentityLabels of an IPv4 address', () => {
  it('are its 33 containing prefixes and the world labels, as the general derivation gives them', () => {
    const addrs = ['0.0.0.0', '255.255.255.255', '10.78.200.20', '128.0.0.1', '1.2.3.4/32', '192.168.255.0/32'];
    for (let i = 0; i < 200; i++) addrs.push(`${(i * 37) % 256}.${(i * 91) % 256}.${(i * 13) % 256}.${(i * 251) % 256}`);
    for (const a of addrs) expect([a, cidrIdentityLabels(a).map(formatLabel)]).toEqual([a, general(a)]);
    expect(cidrIdentityLabels('10.78.200.20').map(formatLabel).slice(29, 33)).toEqual([
      'cidr:10.78.200.16/29',
      'cidr:10.78.200.20/30',
      'cidr:10.78.200.20/31',
      'cidr:10.78.200.20/32',
    ]);
  });

  it('rejects what the strict prefix parser rejects', () => {
    for (const bad of ['01.2.3.4', '1.2.3', '1.2.3.4.5', '256.1.1.1', '1..2.3', '1.2.3.-1', ' 1.2.3.4', '1.2.3.4/33', '1.2.3.4/032']) {
      expect(() => cidrIdentityLabels(bad), bad).toThrow(RangeError);
    }
  });
});
