/**
 * issue-8 the FQDN cache is saved every 5 s off the event loop (StateStore.writeSoon): what the
 * timer wrote is what a restarted agent restores, and a stop writes the latest at once.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { AgentFqdn } from '../../../src/agent/fqdn.js';
import type { Regenerator } from '../../../src/agent/regenerate.js';
import { StateStore } from '../../../src/agent/state-store.js';
import type { Datapath } from '../../../src/datapath/index.js';
import { clientToFqdns } from '../../support/policies.js';

const dirs: string[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function agentFqdn(store: StateStore) {
  const given: Array<{ ip: string; labelKeys: readonly string[] }> = [];
  const regenerator = {
    applyFqdn(changes: Array<{ ip: string; labelKeys: readonly string[] }>) {
      given.push(...changes);
      return { ipcache: changes.length, policyEntries: 0 };
    },
  } as unknown as Regenerator;
  const datapath = { gcConntrack: () => ({ live: [], deleted: 0 }) } as unknown as Datapath;
  const fqdn = new AgentFqdn(store, () => regenerator, () => datapath, { minTtlSeconds: 0, maxIpsPerHostname: 1000, maxDelayMs: 1000 }, pino({ level: 'silent' }));
  return { fqdn, regenerator, given };
}

describe('AgentFqdn cache saves', () => {
  it('the 5 s save writes the learned names; a new agent restores them and gives the regenerator their IPs', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const dir = mkdtempSync(join(tmpdir(), 'fqdn-persist-'));
    dirs.push(dir);
    const store = new StateStore(dir);
    const a = agentFqdn(store);
    await a.fqdn.setPolicies(clientToFqdns('*.example.com'));
    a.fqdn.start();
    await a.fqdn.onAnswer({ endpointId: 1, qname: 'api.example.com', ips: ['10.9.0.1'], ttl: 300 });
    expect(existsSync(join(dir, 'fqdn-cache.json'))).toBe(false);
    vi.advanceTimersByTime(5000);
    await store.settled();
    expect(existsSync(join(dir, 'fqdn-cache.json'))).toBe(true);

    const b = agentFqdn(new StateStore(dir));
    b.fqdn.restore(b.regenerator);
    expect(b.given).toEqual([{ ip: '10.9.0.1', labelKeys: a.given[0]!.labelKeys }]);
    expect(b.fqdn.names.namesOf(1, '10.9.0.1')).toEqual(['api.example.com']);
    a.fqdn.stop();
  });

  it('stop writes names learned after the last timed save at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fqdn-persist-'));
    dirs.push(dir);
    const a = agentFqdn(new StateStore(dir));
    await a.fqdn.setPolicies(clientToFqdns('*.example.com'));
    await a.fqdn.onAnswer({ endpointId: 1, qname: 'www.example.com', ips: ['10.9.0.2'], ttl: 300 });
    a.fqdn.stop();
    const b = agentFqdn(new StateStore(dir));
    b.fqdn.restore(b.regenerator);
    expect(b.fqdn.names.namesOf(1, '10.9.0.2')).toEqual(['www.example.com']);
  });
});
