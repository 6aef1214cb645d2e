/**
 * A DNS answer the agent ignored (invalid endpoint id, name or IP: it taught the datapath nothing)
 * is released but not confirmed to the worker: a later answer with the same name and IPs from a
 * real endpoint still waits for the datapath instead of being released unasked (known-answers.ts).
 * Real AgentFqdn (src/agent/fqdn.ts), the pool's reply (answered.ts) and the worker's KnownAnswers.
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
import type { DnsAnswer } from '../../../src/dnsproxy/index.js';
import { answeredReply, confirmAnswered } from '../../../src/proxyworker/answered.js';
import { KnownAnswers } from '../../../src/proxyworker/known-answers.js';
import { clientToFqdns } from '../../support/policies.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function agentFqdn(): Promise<{ fqdn: AgentFqdn; applied: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'answer-confirm-'));
  dirs.push(dir);
  const applied: string[] = [];
  const regenerator = {
    applyFqdn(changes: Array<{ ip: string; labelKeys: readonly string[] }>) {
      for (const c of changes) applied.push(c.ip);
      return { ipcache: changes.length, policyEntries: 0 };
    },
  } as unknown as Regenerator;
  const fqdn = new AgentFqdn(new StateStore(dir), () => regenerator, () => ({}) as Datapath, { minTtlSeconds: 0, maxIpsPerHostname: 1000, maxDelayMs: 1000 }, pino({ level: 'silent' }));
  await fqdn.setPolicies(clientToFqdns('*.example.com'));
  return { fqdn, applied };
}

/** The answer's round trip as pool.ts and worker.ts make it; then whether a repeat is released unasked. */
async function roundTrip(fqdn: AgentFqdn, known: KnownAnswers, a: DnsAnswer): Promise<void> {
  const reply = await fqdn.onAnswer(a).then(answeredReply);
  confirmAnswered(known, a, structuredClone(reply), Date.now());
}

describe('an answer that taught nothing is not confirmed to the worker', () => {
  it('invalid endpoint id: released, nothing learned, and the same answer from a real endpoint is not released unasked', async () => {
    const { fqdn, applied } = await agentFqdn();
    const known = new KnownAnswers();
    await roundTrip(fqdn, known, { endpointId: -1, qname: 'api.example.com', ips: ['10.9.0.1'], ttl: 300 });
    expect(applied).toEqual([]);
    expect(known.size).toBe(0);
    expect(known.take('api.example.com', ['10.9.0.1'], 300, Date.now())).toBe(false);
    // The real endpoint's answer teaches it; from then on a repeat goes at once.
    await roundTrip(fqdn, known, { endpointId: 1, qname: 'api.example.com', ips: ['10.9.0.1'], ttl: 300 });
    expect(applied).toEqual(['10.9.0.1']);
    expect(known.take('api.example.com', ['10.9.0.1'], 300, Date.now())).toBe(true);
  });

  it('invalid IPs are not confirmed; the valid IPs of the same answer are', async () => {
    const { fqdn, applied } = await agentFqdn();
    const known = new KnownAnswers();
    await roundTrip(fqdn, known, { endpointId: 1, qname: 'api.example.com', ips: ['not-an-ip'], ttl: 300 });
    expect([applied, known.size]).toEqual([[], 0]);
    await roundTrip(fqdn, known, { endpointId: 1, qname: 'www.example.com', ips: ['10.9.0.2', '10.9.0.999'], ttl: 300 });
    expect(applied).toEqual(['10.9.0.2']);
    expect(known.take('www.example.com', ['10.9.0.2', '10.9.0.999'], 300, Date.now())).toBe(false);
    expect(known.take('www.example.com', ['10.9.0.2'], 300, Date.now())).toBe(true);
  });

  it('an over-long name teaches nothing and confirms nothing', async () => {
    const { fqdn, applied } = await agentFqdn();
    const known = new KnownAnswers();
    const long = `${'a.'.repeat(130)}example.com`;
    await roundTrip(fqdn, known, { endpointId: 1, qname: long, ips: ['10.9.0.3'], ttl: 300 });
    expect([applied, known.size]).toEqual([[], 0]);
  });
});
