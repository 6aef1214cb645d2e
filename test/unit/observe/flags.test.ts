import { describe, expect, it } from 'vitest';
import { isMembraneError } from '../../../src/errors/index.js';
import { compileFilters, FILTER_FLAGS, filtersFromFlags, FlowFilterBuilder, type Flow } from '../../../src/observe/index.js';
import { starWarsFlows } from './fixtures.js';

const flows = starWarsFlows();
function run(flags: Array<[string, string?]>): number[] {
  const f = compileFilters(filtersFromFlags(flags));
  return flows.flatMap((flow: Flow, i) => (f(flow) ? [i] : []));
}

describe('hubble observe flags', () => {
  it('--pod matches either side: two allow groups', () => {
    const set = filtersFromFlags([['pod', 'deathstar']]);
    expect(set).toEqual({ allow: [{ source_pod: ['deathstar'] }, { destination_pod: ['deathstar'] }], deny: [] });
    expect(run([['pod', 'deathstar']])).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('reproduces the reference queries: --pod deathstar --protocol http / --verdict DROPPED', () => {
    expect(run([['pod', 'deathstar'], ['protocol', 'http']])).toEqual([0, 1, 2, 3]);
    expect(run([['pod', 'deathstar'], ['verdict', 'DROPPED']])).toEqual([2, 4, 5]);
  });

  it('one-sided flags apply to both groups; equal groups collapse to one', () => {
    expect(filtersFromFlags([['from-pod', 'xwing'], ['type', 'drop']])).toEqual({
      allow: [{ source_pod: ['xwing'], event_type: [{ type: 1 }] }],
      deny: [],
    });
    expect(run([['to-label', 'class=deathstar'], ['type', 'policy-verdict']])).toEqual([4]);
    expect(run([['type', 'trace:to-endpoint']])).toEqual([]);
    expect(filtersFromFlags([['type', 'trace:to-proxy']]).allow[0]?.event_type).toEqual([{ type: 4, sub_type: 1, match_sub_type: true }]);
  });

  it('--not sends the next flag to the deny list', () => {
    expect(run([['protocol', 'http'], ['not'], ['verdict', 'DROPPED']])).toEqual([0, 1, 3]);
    const b = new FlowFilterBuilder().not();
    expect(() => b.not()).toThrow(/consecutive/);
    expect(() => new FlowFilterBuilder().not().build()).toThrow(/--not/);
  });

  it('namespaces qualify pod filters', () => {
    expect(filtersFromFlags([['from-namespace', 'default']]).allow).toEqual([{ source_pod: ['default/'] }]);
    expect(filtersFromFlags([['namespace', 'kube-system']]).allow).toEqual([
      { source_pod: ['kube-system/'] },
      { destination_pod: ['kube-system/'] },
    ]);
    expect(run([['to-namespace', 'default'], ['to-pod', 'deathstar']])).toEqual([0, 2, 4, 5]);
  });

  it('identities accept reserved names; other flags are validated', () => {
    expect(filtersFromFlags([['from-identity', 'world']]).allow).toEqual([{ source_identity: [2] }]);
    expect(run([['identity', '63406']])).toEqual([4, 5]);
    const bad: Array<[string, string]> = [
      ['from-identity', 'nobody'],
      ['verdict', 'dropped'],
      ['drop-reason-desc', 'nope'],
      ['traffic-direction', 'sideways'],
      ['type', 'bogus'],
      ['http-path', '(x'],
      ['from-ip', 'not-an-ip'],
      ['bogus-flag', 'x'],
    ];
    for (const flag of bad) {
      let err: unknown;
      try {
        filtersFromFlags([flag]);
      } catch (e) {
        err = e;
      }
      expect(isMembraneError(err, 'MEMBRANE_ERR_OBSERVE_FILTER'), flag.join('=')).toBe(true);
    }
  });

  it('conflicting flags are refused', () => {
    expect(() => filtersFromFlags([['label', 'a=b'], ['from-label', 'c=d']])).toThrow(/cannot be combined/);
    expect(() => filtersFromFlags([['ip', '10.0.0.1'], ['pod', 'x']])).toThrow(/cannot be combined/);
  });

  it('every flag in the table has help text', () => {
    for (const [name, def] of Object.entries(FILTER_FLAGS)) expect(def.help.length, name).toBeGreaterThan(10);
  });
});
