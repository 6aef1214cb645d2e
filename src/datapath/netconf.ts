/**
 * Node network settings the datapath relies on, in the agent's network namespace:
 * forwarding between pod links, and the rule + local route that deliver packets the
 * programs assigned to a proxy socket (MARK_TO_PROXY) to that socket.
 * Applying them is idempotent; they stay when the agent stops, so redirects keep working
 * across a restart.
 */
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { ipJson, readSysctl, run, writeSysctl } from './system.js';
import { PROXY_ROUTE_TABLE, PROXY_RULE_PREF, MARK_TO_PROXY, MARK_MAGIC_MASK } from './marks.js';

interface IpRule {
  priority?: number;
  fwmark?: string;
  table?: string;
}

/**
 * ip_forward as it was before the agent turned it on, one file per network namespace (named by
 * the namespace's inode, e.g. `net:[4026531840]`), so `membrane uninstall` run in the same
 * namespace puts back exactly what this agent changed.
 */
function forwardingBeforePath(): string {
  const ns = readlinkSync('/proc/self/ns/net').replace(/[^0-9]/g, '');
  return `/run/membrane/ip_forward.before.${ns}`;
}

export function ensureNodeNetwork(): void {
  run('ip', ['link', 'set', 'lo', 'up']);
  const forwarding = readSysctl('net/ipv4/ip_forward');
  if (forwarding !== '1') {
    // Remember what we changed, so `membrane uninstall` can put it back.
    const before = forwardingBeforePath();
    if (!existsSync(before)) {
      mkdirSync(dirname(before), { recursive: true });
      writeFileSync(before, forwarding);
    }
    writeSysctl('net/ipv4/ip_forward', '1');
  }
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
  const before = forwardingBeforePath();
  if (existsSync(before)) {
    writeSysctl('net/ipv4/ip_forward', readFileSync(before, 'utf8').trim());
    rmSync(before, { force: true });
  }
}
