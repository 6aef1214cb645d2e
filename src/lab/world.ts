/**
 * The world namespace's plumbing: a veth from the agent's node namespace on <subnet>.255.0/30,
 * the world addresses on the world side, a /32 route per address in the node namespace, and
 * a default route back. The world is not registered as an endpoint: to the datapath its
 * addresses are absent from the ipcache, i.e. `reserved:world`.
 */
import { existsSync } from 'node:fs';
import { run } from '../datapath/index.js';
import { worldIfname, worldLink, type LabWorld } from './spec-world.js';

export interface WorldState {
  readonly netns: string;
  readonly ifname: string;
  readonly addresses: readonly string[];
  pid: number | null;
  log: string | null;
}

function inNs(netns: string | null, args: string[]): string[] {
  return netns ? ['-n', netns, ...args] : args;
}

function sysctl(netns: string | null, setting: string): void {
  if (netns) run('ip', ['netns', 'exec', netns, 'sysctl', '-qw', setting]);
  else run('sysctl', ['-qw', setting]);
}

/**
 * Builds the world namespace and its routes. `record` is called once the namespace exists, so a
 * failure after it still leaves a state `worldDown` can remove.
 */
export function worldUp(world: LabWorld, labName: string, subnet: string, agentNetns: string | null, record: (w: WorldState) => void): WorldState {
  const ifname = worldIfname(labName);
  const link = worldLink(subnet);
  const state: WorldState = { netns: world.name, ifname, addresses: [...world.addresses], pid: null, log: null };
  // Left by a crashed run: `ip netns add` and `link add` would fail.
  if (existsSync(`/run/netns/${world.name}`)) run('ip', ['netns', 'del', world.name]);
  run('ip', inNs(agentNetns, ['link', 'del', ifname]), { allowFail: true });
  run('ip', ['netns', 'add', world.name]);
  record(state);
  run('ip', inNs(agentNetns, ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', world.name]));
  sysctl(agentNetns, `net.ipv6.conf.${ifname}.disable_ipv6=1`);
  run('ip', inNs(agentNetns, ['addr', 'add', `${link.node}/30`, 'dev', ifname]));
  run('ip', inNs(agentNetns, ['link', 'set', ifname, 'up']));
  sysctl(world.name, 'net.ipv6.conf.all.disable_ipv6=1');
  run('ip', ['-n', world.name, 'link', 'set', 'lo', 'up']);
  run('ip', ['-n', world.name, 'addr', 'add', `${link.world}/30`, 'dev', 'eth0']);
  for (const ip of world.addresses) run('ip', ['-n', world.name, 'addr', 'add', `${ip}/32`, 'dev', 'eth0']);
  run('ip', ['-n', world.name, 'link', 'set', 'eth0', 'up']);
  run('ip', ['-n', world.name, 'route', 'add', 'default', 'via', link.node]);
  for (const ip of world.addresses) run('ip', inNs(agentNetns, ['route', 'replace', `${ip}/32`, 'via', link.world, 'dev', ifname]));
  return state;
}

/** Removes the world namespace and link (its routes go with the link). Never throws. */
export function worldDown(state: WorldState, agentNetns: string | null): void {
  if (existsSync(`/run/netns/${state.netns}`)) run('ip', ['netns', 'del', state.netns], { allowFail: true });
  run('ip', inNs(agentNetns, ['link', 'del', state.ifname]), { allowFail: true });
}
