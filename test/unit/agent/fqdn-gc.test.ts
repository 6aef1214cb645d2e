/**
 * issue-8 the DNS GC keeps an expired address (a zombie) only while an unexpired conntrack entry
 * uses it, as Cilium's CT GC marks zombies alive: the live entries come from the datapath's
 * conntrack GC, which has deleted the expired ones. A removed endpoint's names stop selecting
 * their addresses at once.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { AgentFqdn } from '../../../src/agent/fqdn.js';
import type { Regenerator } from '../../../src/agent/regenerate.js';
import { StateStore } from '../../../src/agent/state-store.js';
import type { CtEntryView, Datapath } from '../../../src/datapath/index.js';
import { clientToFqdns } from '../../support/policies.js';

const dirs: string[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(live: () => Array<Pick<CtEntryView, 'saddr' | 'daddr'>>, isEndpoint?: (id: number) => boolean) {
  const dir = mkdtempSync(join(tmpdir(), 'fqdn-gc-'));
  dirs.push(dir);
  const given = new Map<string, readonly string[]>();
  const regenerator = {
    applyFqdn(changes: Array<{ ip: string; labelKeys: readonly string[] }>) {
      for (const c of changes) given.set(c.ip, c.labelKeys);
      return { ipcache: changes.length, policyEntries: 0 };
    },
  } as unknown as Regenerator;
  let gcs = 0;
  const datapath = {
    gcConntrack: () => {
      gcs++;
      return { live: live(), deleted: 0 };
    },
  } as unknown as Datapath;
  const fqdn = new AgentFqdn(new StateStore(dir), () => regenerator, () => datapath, { minTtlSeconds: 0, maxIpsPerHostname: 1000, maxDelayMs: 1000, ...(isEndpoint ? { isEndpoint } : {}) }, pino({ level: 'silent' }));
  return { fqdn, given, gcs: () => gcs };
}

describe('AgentFqdn DNS GC', () => {
  it('an expired address stays selected while a live conntrack entry uses it, and goes once none does', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    let conns: Array<Pick<CtEntryView, 'saddr' | 'daddr'>> = [{ saddr: '10.1.0.2', daddr: '10.9.0.1' }];
    const s = setup(() => conns);
    await s.fqdn.setPolicies(clientToFqdns('*.example.com'));
    await s.fqdn.onAnswer({ endpointId: 1, qname: 'api.example.com', ips: ['10.9.0.1'], ttl: 30 });
    // Another name: a zombie of the same name would live on with .1 (Cilium's aliveNames).
    await s.fqdn.onAnswer({ endpointId: 1, qname: 'www.example.com', ips: ['10.9.0.2'], ttl: 30 });
    expect(s.given.get('10.9.0.1')?.length).toBeGreaterThan(0);
    vi.setSystemTime(Date.now() + 31_000);
    await s.fqdn.gc();
    expect(s.gcs()).toBe(1);
    // .1 has a connection: a zombie, still selected; .2 has none: unselected.
    expect(s.given.get('10.9.0.1')?.length).toBeGreaterThan(0);
    expect(s.given.get('10.9.0.2')).toEqual([]);
    expect(s.fqdn.names.cacheList().map((e) => [e.source, e.ips.join()])).toEqual([['connection', '10.9.0.1']]);
    // The connection ended (its entry expired and the conntrack GC deleted it).
    conns = [];
    await s.fqdn.gc();
    expect(s.given.get('10.9.0.1')).toEqual([]);
    expect(s.fqdn.names.cacheList()).toEqual([]);
  });

  it('a removed endpoint: its names stop selecting its addresses, others keep theirs; an answer still in flight for it teaches nothing', async () => {
    const registered = new Set([1, 2]);
    const s = setup(() => [], (id) => registered.has(id));
    await s.fqdn.setPolicies(clientToFqdns('*.example.com'));
    await s.fqdn.onAnswer({ endpointId: 1, qname: 'api.example.com', ips: ['10.9.0.1'], ttl: 300 });
    await s.fqdn.onAnswer({ endpointId: 2, qname: 'www.example.com', ips: ['10.9.0.3'], ttl: 300 });
    registered.delete(1);
    await s.fqdn.forgetEndpoint(1);
    expect(s.given.get('10.9.0.1')).toEqual([]);
    const late = await s.fqdn.onAnswer({ endpointId: 1, qname: 'api.example.com', ips: ['10.9.0.1'], ttl: 300 });
    expect(late).toMatchObject({ newIps: 0, ips: [] });
    expect(s.given.get('10.9.0.1')).toEqual([]);
    expect(s.given.get('10.9.0.3')?.length).toBeGreaterThan(0);
    expect(s.fqdn.names.cacheList().map((e) => e.endpointId)).toEqual([2]);
  });
});
