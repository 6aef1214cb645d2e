/**
 * A policy patch a worker cannot apply leaves its endpoint denied (fail closed); the worker then
 * asks the agent for a snapshot (src/proxyworker/resync.ts) instead of staying denied until the
 * next full state. The requests are bounded: one outstanding, one per interval.
 */
import { describe, expect, it } from 'vitest';
import { ResyncRequester, WorkerState, type Delta, type EndpointState } from '../../../src/proxyworker/index.js';
import { decideL7, type EndpointPolicy, type MapEntry } from '../../../src/policy/index.js';

const entry = (identity: number): MapEntry => ({
  identity,
  protocol: 0,
  port: 0,
  portPrefixLen: 0,
  verdict: 'allow',
  derivedFrom: [{ policy: 'p', namespace: 'default', kind: 'CiliumNetworkPolicy', direction: 'egress', index: 0 }],
});
const policy = (egress: MapEntry[]): EndpointPolicy => ({ ingress: { enforced: false, entries: [] }, egress: { enforced: true, entries: egress } });
const client = (p: EndpointPolicy): EndpointState => ({ ip: '10.1.0.2', id: 7, identity: 1000, policy: p, flowEndpoint: { ID: 7, identity: 1000, namespace: 'default', labels: [], pod_name: 'client' } });
const delta = (d: Partial<Delta>): Delta => structuredClone({ endpoints: [], removedEndpoints: [], identities: [], removedIdentities: [], ...d });
const dnsTo = (s: WorkerState, dstIdentity: number): boolean =>
  decideL7(s.l7Flow('10.1.0.2', 1000, '192.0.2.1', 53, 17, dstIdentity), { kind: 'dns', qname: 'a.example.' } as never).allowed;

/** A worker's message handling (worker.ts) around a WorkerState, with a clock the test moves. */
function worker(): { state: WorkerState; resync: ResyncRequester; sent: number[]; timers: { at: number; fn: () => void }[]; clock: { now: number }; recv: (d: Delta, snapshot: boolean) => void } {
  const clock = { now: 0 };
  const sent: number[] = [];
  const timers: { at: number; fn: () => void }[] = [];
  const resync = new ResyncRequester({
    send: () => sent.push(clock.now),
    minIntervalMs: 1000,
    now: () => clock.now,
    schedule: (fn, ms) => {
      const t = { at: clock.now + ms, fn };
      timers.push(t);
      return () => timers.splice(timers.indexOf(t), 1);
    },
  });
  const state = new WorkerState(() => 2);
  const recv = (d: Delta, snapshot: boolean): void => {
    if (snapshot) resync.snapshotApplied();
    if (state.apply(d, snapshot) > 0) resync.need();
  };
  return { state, resync, sent, timers, clock, recv };
}

describe('proxy worker resync after a policy patch that does not apply', () => {
  it('the endpoint is denied, the worker asks for a snapshot once, and the snapshot allows it again', () => {
    const w = worker();
    w.recv(delta({ endpoints: [client(policy([entry(1), entry(2)]))] }), true);
    expect(dnsTo(w.state, 2)).toBe(true);
    // Index 5 is not in the worker's list: the patch cannot apply (a bug on either side).
    const bad = { ip: '10.1.0.2', ingress: { removed: [], added: [] }, egress: { removed: [5], added: [entry(3)] } };
    w.recv(delta({ policyPatches: [bad] }), false);
    expect([dnsTo(w.state, 2), dnsTo(w.state, 3)]).toEqual([false, false]);
    expect([w.sent.length, w.resync.outstanding, w.state.patchFailures]).toEqual([1, true, 1]);
    // More stale patches while the request is outstanding: no second request.
    w.recv(delta({ policyPatches: [{ ...bad, egress: { removed: [], added: [entry(4)] } }] }), false);
    expect([w.sent.length, w.state.patchFailures]).toEqual([1, 2]);
    // The agent answers with what it sent so far: the endpoint is allowed again.
    w.recv(delta({ endpoints: [client(policy([entry(1), entry(3), entry(4)]))] }), true);
    expect([dnsTo(w.state, 2), dnsTo(w.state, 3), dnsTo(w.state, 4), w.resync.outstanding]).toEqual([false, true, true, false]);
  });

  it('a patch for an endpoint whose policy the worker does not hold also asks for a snapshot', () => {
    const w = worker();
    w.recv(delta({ endpoints: [{ ...client(policy([])), policy: null }] }), true);
    w.recv(delta({ policyPatches: [{ ip: '10.1.0.2', ingress: { removed: [], added: [] }, egress: { removed: [], added: [entry(3)] } }] }), false);
    expect(w.sent.length).toBe(1);
  });

  it('is rate-limited: a failure soon after a resync waits for the interval, with one timer, and a snapshot meanwhile cancels it', () => {
    const w = worker();
    const bad = delta({ policyPatches: [{ ip: '10.1.0.2', ingress: { removed: [9], added: [] }, egress: { removed: [], added: [] } }] });
    const snap = delta({ endpoints: [client(policy([entry(1)]))] });
    w.recv(snap, true);
    w.recv(bad, false);
    w.clock.now = 100;
    w.recv(snap, true);
    w.clock.now = 200;
    w.recv(bad, false);
    w.recv(bad, false);
    expect([w.sent, w.timers.length, w.timers[0]?.at]).toEqual([[0], 1, 1000]);
    w.clock.now = 1000;
    w.timers.shift()!.fn();
    expect([w.sent, w.resync.requests]).toEqual([[0, 1000], 2]);
    // Deferred again, then a snapshot for another reason (a worker restart's): nothing is sent.
    w.recv(snap, true);
    w.clock.now = 1100;
    w.recv(bad, false);
    expect(w.timers.length).toBe(1);
    w.recv(snap, true);
    expect([w.timers.length, w.sent.length]).toEqual([0, 2]);
  });
});
