/**
 * The DNS proxy's remembered policy decisions (src/dnsproxy/policy.ts DnsDecisions) give what
 * `evaluateQuery` gives, and follow every change of the flow: a new policy (a new object), the
 * server's identity, the port, the source's local state. Real policies through the policy module.
 */
import { describe, expect, it } from 'vitest';
import { DnsDecisions, evaluateQuery } from '../../../src/dnsproxy/policy.js';
import { PROTO, type L7Flow } from '../../../src/policy/index.js';
import { PolicyState } from '../../support/policy-state.js';
import { dnsPolicyYaml, KUBE_DNS, MEDIABOT } from '../../integration/dnsproxy/harness.js';

const SRC = { ip: '10.0.0.5', port: 40000, identity: MEDIABOT.identity };
const DST = { ip: '10.0.0.53', port: 53 };

function flows(state: PolicyState, over: Partial<L7Flow> = {}): () => L7Flow {
  return () => ({ srcIdentity: MEDIABOT.identity, dstIdentity: KUBE_DNS.identity, protocol: PROTO.UDP, dport: 53, srcPolicy: state.policyOf('mediabot'), ...over });
}

describe('DnsDecisions', () => {
  it('answers as evaluateQuery for allowed and denied names, and again the same for the same flow', () => {
    const state = new PolicyState(dnsPolicyYaml(53, [{ matchName: 'api.github.com' }]), [MEDIABOT, KUBE_DNS]);
    const d = new DnsDecisions();
    for (const name of ['api.github.com.', 'evil.example.', 'api.github.com.', 'evil.example.']) {
      expect(d.evaluate(flows(state), SRC, DST, 17, name)).toEqual(evaluateQuery(flows(state), SRC, DST, 17, name));
    }
    expect(d.evaluate(flows(state), SRC, DST, 17, 'api.github.com.').allowed).toBe(true);
    expect(d.evaluate(flows(state), SRC, DST, 17, 'evil.example.').allowed).toBe(false);
  });

  it('a new policy (another object) is judged anew: a name allowed before is refused after the rule changed', () => {
    const before = new PolicyState(dnsPolicyYaml(53, [{ matchName: 'api.github.com' }]), [MEDIABOT, KUBE_DNS]);
    const after = new PolicyState(dnsPolicyYaml(53, [{ matchName: 'www.github.com' }]), [MEDIABOT, KUBE_DNS]);
    let state = before;
    const l7Flow = (): L7Flow => flows(state)();
    const d = new DnsDecisions();
    expect(d.evaluate(l7Flow, SRC, DST, 17, 'api.github.com.').allowed).toBe(true);
    state = after;
    expect(d.evaluate(l7Flow, SRC, DST, 17, 'api.github.com.').allowed).toBe(false);
    expect(d.evaluate(l7Flow, SRC, DST, 17, 'www.github.com.').allowed).toBe(true);
    state = before;
    expect(d.evaluate(l7Flow, SRC, DST, 17, 'api.github.com.').allowed).toBe(true);
  });

  it('the rest of the flow is part of the key: another server identity, port, or a source without policy state', () => {
    const state = new PolicyState(dnsPolicyYaml(53, [{ matchName: 'api.github.com' }]), [MEDIABOT, KUBE_DNS]);
    const d = new DnsDecisions();
    expect(d.evaluate(flows(state), SRC, DST, 17, 'api.github.com.').allowed).toBe(true);
    // The policy allows DNS to kube-dns only: another identity behind the same server address is denied.
    const other = d.evaluate(flows(state, { dstIdentity: 2 }), SRC, DST, 17, 'api.github.com.');
    expect(other).toEqual(evaluateQuery(flows(state, { dstIdentity: 2 }), SRC, DST, 17, 'api.github.com.'));
    expect(other.allowed).toBe(false);
    expect(d.evaluate(flows(state, { dport: 5353 }), SRC, DST, 17, 'api.github.com.').allowed).toBe(false);
    const noState = d.evaluate(flows(state, { srcPolicy: null }), SRC, DST, 17, 'api.github.com.');
    expect(noState.allowed).toBe(false);
    expect(d.evaluate(flows(state), SRC, DST, 17, 'api.github.com.').allowed).toBe(true);
  });

  it('a policy error denies and is not remembered', () => {
    const state = new PolicyState(dnsPolicyYaml(53, [{ matchName: 'api.github.com' }]), [MEDIABOT, KUBE_DNS]);
    const d = new DnsDecisions();
    let broken = true;
    const l7Flow = (): L7Flow => {
      if (broken) throw new Error('state not loaded');
      return flows(state)();
    };
    expect(d.evaluate(l7Flow, SRC, DST, 17, 'api.github.com.')).toMatchObject({ allowed: false, reason: 'policy error: state not loaded' });
    broken = false;
    expect(d.evaluate(l7Flow, SRC, DST, 17, 'api.github.com.').allowed).toBe(true);
  });
});
