import { describe, expect, it } from 'vitest';
import { cidrIdentityLabels, endpointLabels, formatLabel, parseLabel, reservedIdentities, RESERVED_IDENTITY } from '../../../src/policy/index.js';
import { parseSelectLabel } from '../../../src/policy/api/labels.js';

describe('labels', () => {
  it('parseLabel / formatLabel', () => {
    expect(parseLabel('k8s:org=empire')).toEqual({ source: 'k8s', key: 'org', value: 'empire' });
    expect(parseLabel('org=empire')).toEqual({ source: 'unspec', key: 'org', value: 'empire' });
    expect(parseLabel('reserved:host')).toEqual({ source: 'reserved', key: 'host', value: '' });
    expect(parseLabel('cidr:10.0.0.0/8')).toEqual({ source: 'cidr', key: '10.0.0.0/8', value: '' });
    expect(parseLabel('k8s:io.kubernetes.pod.namespace=default')).toEqual({ source: 'k8s', key: 'io.kubernetes.pod.namespace', value: 'default' });
    expect(parseLabel('k8s:url=http://x')).toEqual({ source: 'k8s', key: 'url', value: 'http://x' });
    expect(parseLabel('a=b:c')).toEqual({ source: 'unspec', key: 'a', value: 'b:c' });
    expect(formatLabel({ source: 'k8s', key: 'org', value: 'empire' })).toBe('k8s:org=empire');
    expect(formatLabel({ source: 'reserved', key: 'host', value: '' })).toBe('reserved:host');
    for (const s of ['k8s:org=empire', 'reserved:world', 'cidr:10.0.0.0/8']) expect(formatLabel(parseLabel(s))).toBe(s);
  });

  it('issue-7 parseLabel / parseSelectLabel follow Cilium pkg/labels (source up to the first colon)', () => {
    expect(parseLabel('k8s:k8s:org=x')).toEqual({ source: 'k8s', key: 'k8s:org', value: 'x' });
    expect(parseLabel('container:app=web')).toEqual({ source: 'container', key: 'app', value: 'web' });
    expect(parseLabel('unspec:app')).toEqual({ source: 'unspec', key: 'app', value: '' });
    expect(parseLabel('any:app=web')).toEqual({ source: 'any', key: 'app', value: 'web' });
    // Cilium's short forms for reserved labels.
    expect(parseLabel('$host')).toEqual({ source: 'reserved', key: 'host', value: '' });
    expect(parseLabel('reserved.world')).toEqual({ source: 'reserved', key: 'world', value: '' });
    expect(parseLabel('reserved:=health')).toEqual({ source: 'reserved', key: 'health', value: '' });
    expect(parseLabel('cidr:2001-db8--0/32')).toEqual({ source: 'cidr', key: '2001-db8--0/32', value: '' });
    expect(parseLabel(':app=x')).toEqual({ source: 'unspec', key: 'app', value: 'x' });
    // ParseSelectLabel: no source selects every source.
    expect(parseSelectLabel('org=empire')).toEqual({ source: 'any', key: 'org', value: 'empire' });
    expect(parseSelectLabel('k8s:org=empire')).toEqual({ source: 'k8s', key: 'org', value: 'empire' });
  });

  it('endpointLabels gives the labels Cilium derives for a pod', () => {
    expect(endpointLabels({ namespace: 'default', podLabels: { org: 'empire', class: 'deathstar', 'app.kubernetes.io/name': 'deathstar' } }).map(formatLabel)).toEqual([
      'k8s:app.kubernetes.io/name=deathstar',
      'k8s:class=deathstar',
      'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=default',
      'k8s:io.cilium.k8s.policy.cluster=default',
      'k8s:io.cilium.k8s.policy.serviceaccount=default',
      'k8s:io.kubernetes.pod.namespace=default',
      'k8s:org=empire',
    ]);
    expect(endpointLabels({ namespace: 'x', podLabels: {}, namespaceLabels: { team: 'a' }, serviceAccount: 'sa', cluster: 'c1' }).map(formatLabel)).toEqual([
      'k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name=x',
      'k8s:io.cilium.k8s.namespace.labels.team=a',
      'k8s:io.cilium.k8s.policy.cluster=c1',
      'k8s:io.cilium.k8s.policy.serviceaccount=sa',
      'k8s:io.kubernetes.pod.namespace=x',
    ]);
  });

  it('reserved identities', () => {
    const r = reservedIdentities();
    expect(r.map((i) => i.id)).toEqual(Object.values(RESERVED_IDENTITY));
    expect(r.find((i) => i.id === 2)!.labels.map(formatLabel)).toEqual(['reserved:world']);
    expect(r.find((i) => i.id === 7)!.labels.map(formatLabel)).toEqual(['reserved:kube-apiserver', 'reserved:remote-node']);
  });

  it('CIDR identity labels name every containing prefix', () => {
    const l = cidrIdentityLabels('10.1.2.0/24').map(formatLabel);
    expect(l).toHaveLength(25 + 2);
    expect(l.slice(0, 2)).toEqual(['cidr:0.0.0.0/0', 'cidr:0.0.0.0/1']);
    expect(l.slice(-4)).toEqual(['cidr:10.1.2.0/23', 'cidr:10.1.2.0/24', 'reserved:world', 'reserved:world-ipv4']);
    const v6 = cidrIdentityLabels('2001:db8::/32').map(formatLabel);
    expect(v6[0]).toBe('cidr:0--0/0');
    expect(v6.at(-3)).toBe('cidr:2001-db8--0/32');
    expect(v6.at(-1)).toBe('reserved:world-ipv6');
    expect(() => cidrIdentityLabels('nope')).toThrow(RangeError);
  });
});
