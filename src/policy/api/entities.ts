/**
 * Entities (`fromEntities`/`toEntities`) as selectors over reserved labels.
 * `all` is the wildcard; `none` selects nothing; `cluster` is every reserved in-cluster identity
 * plus every pod of the cluster.
 */
import type { Peer, Selector } from './types.js';
import { LABEL_KEY } from './labels.js';

function reserved(name: string): Selector {
  return { requirements: [{ source: 'reserved', key: name, operator: 'Exists', values: [] }] };
}

const CLUSTER_RESERVED = ['host', 'remote-node', 'init', 'ingress', 'health', 'unmanaged', 'kube-apiserver'];

export const ENTITIES: Readonly<Record<string, readonly Selector[] | 'all' | 'none'>> = {
  all: 'all',
  none: 'none',
  world: [reserved('world'), reserved('world-ipv4'), reserved('world-ipv6')],
  'world-ipv4': [reserved('world-ipv4')],
  'world-ipv6': [reserved('world-ipv6')],
  cluster: [
    ...CLUSTER_RESERVED.map(reserved),
    { requirements: [{ source: 'k8s', key: LABEL_KEY.cluster, operator: 'Exists', values: [] }] },
  ],
  host: [reserved('host')],
  'remote-node': [reserved('remote-node')],
  'kube-apiserver': [reserved('kube-apiserver')],
  ingress: [reserved('ingress')],
  health: [reserved('health')],
  init: [reserved('init')],
  unmanaged: [reserved('unmanaged')],
};

export function entityPeer(name: string, what: string): Peer | undefined {
  const e = ENTITIES[name];
  if (e === undefined) return undefined;
  if (e === 'all') return { kind: 'selector', what, anyOf: [{ requirements: [] }] };
  if (e === 'none') return { kind: 'none', what };
  return { kind: 'selector', what, anyOf: e };
}
