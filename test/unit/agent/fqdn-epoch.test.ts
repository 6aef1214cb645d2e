/**
 * issue-9 the proxy workers' fast DNS release stays behind the datapath (src/agent/fqdn.ts):
 * the FQDN apply is passed on (onApplied: the workers' delta) before the answers waiting for it
 * settle, and the FQDN epoch — which voids every answer a worker would release unasked — moves
 * whenever a selection the datapath was given changes or an update fails, not for new IPs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { AgentFqdn } from '../../../src/agent/fqdn.js';
import type { Regenerator } from '../../../src/agent/regenerate.js';
import { StateStore } from '../../../src/agent/state-store.js';
import type { Datapath } from '../../../src/datapath/index.js';
import { clientToFqdns } from '../../support/policies.js';

const policy = clientToFqdns;

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function setup(opts: { failApply?: () => boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fqdn-epoch-'));
  dirs.push(dir);
  const events: string[] = [];
  const applied: Array<Array<{ ip: string; labelKeys: readonly string[] }>> = [];
  const regenerator = {
    applyFqdn(changes: Array<{ ip: string; labelKeys: readonly string[] }>) {
      if (opts.failApply?.()) throw new Error('map full');
      applied.push(changes);
      events.push(`apply ${changes.map((c) => `${c.ip}=${c.labelKeys.length}`).join(',')}`);
      return { ipcache: changes.length, policyEntries: 0 };
    },
  } as unknown as Regenerator;
  const fqdn = new AgentFqdn(new StateStore(dir), () => regenerator, () => ({}) as Datapath, { minTtlSeconds: 0, maxIpsPerHostname: 1000, maxDelayMs: 1000 }, pino({ level: 'silent' }));
  const epochs: number[] = [];
  fqdn.onApplied(() => events.push('applied'));
  fqdn.onEpoch((e) => epochs.push(e));
  return { fqdn, events, applied, epochs };
}

describe('AgentFqdn epoch and apply hook', () => {
  it('the workers hear of an apply before the answer that waited for it settles; new IPs keep the epoch', async () => {
    const { fqdn, events, epochs } = setup();
    await fqdn.setPolicies(policy('*.example.com'));
    // New selectors reach the workers (their learn table: src/proxyworker/prelearn.ts) even when no address moved.
    expect(events).toEqual(['applied']);
    events.length = 0;
    const r = await fqdn.onAnswer({ endpointId: 1, qname: 'api.example.com', ips: ['10.9.0.1'], ttl: 300 }).then((x) => {
      events.push('answer settled');
      return x;
    });
    expect(events).toEqual(['apply 10.9.0.1=1', 'applied', 'answer settled']);
    expect(r).toMatchObject({ newIps: 1, timedOut: false, epoch: 0 });
    await fqdn.onAnswer({ endpointId: 1, qname: 'www.example.com', ips: ['10.9.0.2'], ttl: 300 });
    expect(epochs).toEqual([]);
    expect(fqdn.epoch).toBe(0);
  });

  it('a selector change that unselects a learned IP moves the epoch', async () => {
    const { fqdn, epochs } = setup();
    await fqdn.setPolicies(policy('*.example.com'));
    await fqdn.onAnswer({ endpointId: 1, qname: 'api.example.com', ips: ['10.9.0.1'], ttl: 300 });
    await fqdn.setPolicies(policy('*.other.test'));
    expect(epochs).toEqual([1]);
    // an answer confirmed from now on carries the new epoch
    expect((await fqdn.onAnswer({ endpointId: 1, qname: 'x.other.test', ips: ['10.9.0.7'], ttl: 300 })).epoch).toBe(1);
  });

  it('a selector added for a name answered before (its IPs had no labels) moves the epoch before the push', async () => {
    const { fqdn, epochs } = setup();
    await fqdn.setPolicies(policy('*.example.com'));
    // confirmed in epoch 0 with nothing to learn: no selector selects it
    expect((await fqdn.onAnswer({ endpointId: 1, qname: 'x.other.test', ips: ['10.9.0.7'], ttl: 300 })).epoch).toBe(0);
    await fqdn.setPolicies([...policy('*.example.com'), ...policy('*.other.test').map((p) => ({ ...p, name: 'other' }))]);
    expect(epochs).toEqual([1]);
    // the same policy again moves nothing
    await fqdn.setPolicies([...policy('*.example.com'), ...policy('*.other.test').map((p) => ({ ...p, name: 'other' }))]);
    expect(epochs).toEqual([1]);
  });

  it('a second name selecting a learned IP (its labels change) moves the epoch', async () => {
    const { fqdn, epochs } = setup();
    const policies = [...policy('*.example.com'), ...policy('cdn.test').map((p) => ({ ...p, name: 'cdn' }))];
    await fqdn.setPolicies(policies);
    await fqdn.onAnswer({ endpointId: 1, qname: 'api.example.com', ips: ['10.9.0.1'], ttl: 300 });
    expect(epochs).toEqual([]);
    await fqdn.onAnswer({ endpointId: 1, qname: 'cdn.test', ips: ['10.9.0.1'], ttl: 300 });
    expect(epochs).toEqual([1]);
  });

  it('a failed map update moves the epoch and the answer is not confirmed by it', async () => {
    let fail = true;
    const { fqdn, epochs } = setup({ failApply: () => fail });
    await fqdn.setPolicies(policy('*.example.com'));
    const r = await fqdn.onAnswer({ endpointId: 1, qname: 'api.example.com', ips: ['10.9.0.1'], ttl: 300 });
    expect(epochs).toEqual([1]);
    // it began in epoch 0, which the failure ended: a worker does not keep it
    expect(r.epoch).toBe(0);
    fail = false;
    expect((await fqdn.onAnswer({ endpointId: 1, qname: 'api.example.com', ips: ['10.9.0.1'], ttl: 300 })).epoch).toBe(1);
  });
});
