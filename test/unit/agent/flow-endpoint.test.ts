import { describe, expect, it } from 'vitest';
import { flowEndpoint, type FlowContextLookup } from '../../../src/agent/flows.js';
import type { Endpoint } from '../../../src/agent/endpoints.js';
import { parseLabel, type Identity } from '../../../src/policy/index.js';

describe('issue-9 flow endpoints of datapath events', () => {
  const labels = (...l: string[]) => l.map(parseLabel);
  const ep = { id: 1201, identity: 4242, namespace: 'default', name: 'deathstar-1', labels: labels('k8s:org=empire', 'k8s:class=deathstar') } as unknown as Endpoint;
  const identities = new Map<number, Identity>([[16777217, { id: 16777217, labels: labels('reserved:world', 'cidr:192.0.2.7/32') } as unknown as Identity]]);
  const ctx: FlowContextLookup = {
    endpointByIp: (ip) => (ip === '10.0.1.20' ? ep : undefined),
    identity: (id) => identities.get(id),
    nodeName: 'n1',
  };

  it('name the labels formatted and sorted, again after they change (a new labels array)', () => {
    expect(flowEndpoint('10.0.1.20', 4242, ctx)).toEqual({ ID: 1201, identity: 4242, namespace: 'default', labels: ['k8s:class=deathstar', 'k8s:org=empire'], pod_name: 'deathstar-1' });
    expect(flowEndpoint('192.0.2.7', 16777217, ctx).labels).toEqual(['cidr:192.0.2.7/32', 'reserved:world']);
    expect(flowEndpoint('10.0.1.20', 4242, ctx).labels).toEqual(['k8s:class=deathstar', 'k8s:org=empire']);
    (ep as { labels: unknown }).labels = labels('k8s:org=alliance', 'k8s:class=xwing');
    expect(flowEndpoint('10.0.1.20', 4242, ctx).labels).toEqual(['k8s:class=xwing', 'k8s:org=alliance']);
    expect(flowEndpoint('192.0.2.9', 99, ctx)).toEqual({ ID: 0, identity: 99, namespace: '', labels: [], pod_name: '' });
  });
});
