/**
 * issue-11 proxy visibility on endpoints: the agent takes pod annotations with the endpoint spec,
 * applies a valid visibility annotation and, as Cilium did, ignores one that does not parse (the
 * endpoint is still created, the error is its "VISIBILITY POLICY" status); `membrane lab up`
 * refuses a lab spec whose annotation does not parse, naming the pod and the annotation.
 */
import { describe, expect, it } from 'vitest';
import { validateEndpointSpec } from '../../../src/agent/endpoints.js';
import { endpointVisibility, visibilityStatus } from '../../../src/agent/visibility.js';
import { checkLabVisibility } from '../../../src/cli/lab-visibility.js';
import { parseLabSpec } from '../../../src/lab/index.js';

const base = { name: 'deathstar', namespace: 'default', podLabels: { class: 'deathstar' }, ip: '10.77.1.2', ifname: 'mb-deathstar' };

describe('endpoint annotations', () => {
  it('the endpoint spec carries string annotations and refuses other values', () => {
    const spec = validateEndpointSpec({ ...base, annotations: { 'policy.cilium.io/proxy-visibility': '<Ingress/80/TCP/HTTP>' } });
    expect(spec.annotations).toEqual({ 'policy.cilium.io/proxy-visibility': '<Ingress/80/TCP/HTTP>' });
    expect(() => validateEndpointSpec({ ...base, annotations: { a: 1 } })).toThrow(/annotations: must map keys to string values/);
    expect(validateEndpointSpec(base).annotations).toBeUndefined();
  });

  it('a valid annotation gives the visibility policy and status OK; none gives no status', () => {
    const v = endpointVisibility({ 'policy.cilium.io/proxy-visibility': '<Ingress/80/TCP/HTTP>,<Egress/53/UDP/DNS>' });
    expect(v.visibility?.ports).toHaveLength(2);
    expect(visibilityStatus(v)).toBe('OK');
    expect(visibilityStatus(endpointVisibility(undefined))).toBeUndefined();
  });

  it('an annotation that does not parse is ignored and its error, naming the annotation, is the status', () => {
    const v = endpointVisibility({ 'io.cilium.proxy-visibility': '<Ingress/53/UDP/DNS>' });
    expect(v.visibility).toBeNull();
    expect(visibilityStatus(v)).toBe('io.cilium.proxy-visibility: <Ingress/53/UDP/DNS>: dns not allowed with direction Ingress');
  });
});

describe('lab spec annotations', () => {
  const lab = (annotation: string): string => `
apiVersion: membrane.dev/v1alpha1
kind: Lab
metadata: {name: vis}
spec:
  pods:
    - name: deathstar
      labels: {class: deathstar}
      annotations: {policy.cilium.io/proxy-visibility: "${annotation}"}
`;

  it('pod annotations are read and passed on', () => {
    const spec = parseLabSpec(lab('<Ingress/80/TCP/HTTP>'), 'vis.yaml');
    expect(spec.pods[0]!.annotations).toEqual({ 'policy.cilium.io/proxy-visibility': '<Ingress/80/TCP/HTTP>' });
    expect(() => checkLabVisibility(spec, 'vis.yaml')).not.toThrow();
  });

  it('lab up refuses an annotation that does not parse, naming the pod and the annotation', () => {
    const spec = parseLabSpec(lab('<Ingress/80/TCP/Kafka>'), 'vis.yaml');
    expect(() => checkLabVisibility(spec, 'vis.yaml')).toThrow(
      /vis\.yaml: spec\.pods\[0\]\.annotations\["policy\.cilium\.io\/proxy-visibility"\]: pod default\/deathstar: <Ingress\/80\/TCP\/Kafka>: kafka visibility is not supported/,
    );
  });

  it('annotations must be strings', () => {
    expect(() => parseLabSpec(lab('x').replace('"x"', '{a: 1}'), 'vis.yaml')).toThrow(/spec\.pods\[0\]\.annotations: must map keys to string values/);
  });
});
