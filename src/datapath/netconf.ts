/**
 * Node network settings the datapath relies on, in the agent's network namespace:
 * forwarding between pod links, and the rule + local route that deliver packets the
 * programs assigned to a proxy socket (MARK_TO_PROXY) to that socket.
 * Applying them is idempotent; they stay when the agent stops, so redirects keep working
 * across a restart.
 */
import { ipJson, readSysctl, run, writeSysctl } from './system.js';
import { PROXY_ROUTE_TABLE, PROXY_RULE_PREF, MARK_TO_PROXY, MARK_MAGIC_MASK } from './marks.js';

interface IpRule {
  priority?: number;
  fwmark?: string;
  table?: string;
}

export function ensureNodeNetwork(): void {
  run('ip', ['link', 'set', 'lo', 'up']);
  if (readSysctl('net/ipv4/ip_forward') !== '1') writeSysctl('net/ipv4/ip_forward', '1');
  const rules = ipJson<IpRule[]>(['rule', 'show']);
  const present = rules.some((r) => r.priority === PROXY_RULE_PREF && r.table === String(PROXY_ROUTE_TABLE));
  if (!present) {
    run('ip', [
      'rule', 'add', 'fwmark', `0x${MARK_TO_PROXY.toString(16)}/0x${MARK_MAGIC_MASK.toString(16)}`,
      'lookup', String(PROXY_ROUTE_TABLE), 'pref', String(PROXY_RULE_PREF),
    ]);
  }
  run('ip', ['route', 'replace', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', String(PROXY_ROUTE_TABLE)]);
}

/** Removes what ensureNodeNetwork added (used by `membrane lab down` and tests). */
export function removeNodeNetwork(): void {
  run('ip', ['rule', 'del', 'pref', String(PROXY_RULE_PREF)], { allowFail: true });
  run('ip', ['route', 'flush', 'table', String(PROXY_ROUTE_TABLE)], { allowFail: true });
}
