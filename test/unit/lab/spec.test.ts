/** Lab specs: what deploy/lab/*.yaml may say, and the errors that name the field when it is wrong. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { hostIfname, parseLabSpec, podAddress } from '../../../src/lab/index.js';

const STARWARS = readFileSync(new URL('../../../deploy/lab/starwars.yaml', import.meta.url), 'utf8');

describe('lab spec', () => {
  it('reads the Star Wars lab with the reference demo labels', () => {
    const spec = parseLabSpec(STARWARS, 'starwars.yaml');
    expect(spec.pods.map((p) => [p.name, p.labels.org, p.labels.class])).toEqual([
      ['deathstar', 'empire', 'deathstar'],
      ['tiefighter', 'empire', 'tiefighter'],
      ['xwing', 'alliance', 'xwing'],
    ]);
    const ds = spec.pods[0];
    expect(ds && podAddress(spec, ds)).toEqual({ pod: '10.77.1.2', host: '10.77.1.1' });
    expect(ds && hostIfname(ds)).toBe('mb-deathstar');
    expect(ds?.serve).toEqual({ app: 'starwars', ports: [80] });
    expect(spec.hosts['deathstar.default.svc.cluster.local']).toBe('deathstar');
    expect(spec.services).toEqual([{ name: 'deathstar', namespace: 'default', selector: { org: 'empire', class: 'deathstar' } }]);
  });

  it('carries named ports and namespace labels', () => {
    const spec = parseLabSpec(
      `kind: Lab
metadata: {name: np}
spec:
  subnet: "10.9"
  namespaces: {y: {labels: {team: blue}}}
  pods:
    - name: a
      namespace: y
      ports: [{name: serve-80-tcp, containerPort: 80}, {name: serve-81-udp, containerPort: 81, protocol: UDP}]
      serve: {app: echo, ports: [80, 81]}
`,
      'np.yaml',
    );
    expect(spec.pods[0]?.namedPorts).toEqual({ 'serve-80-tcp': { port: 80, protocol: 6 }, 'serve-81-udp': { port: 81, protocol: 17 } });
    expect(spec.namespaces).toEqual({ y: { team: 'blue' } });
  });

  it.each([
    ['kind: Pod\nmetadata: {name: x}\nspec: {pods: [{name: a}]}', /bad\.yaml: kind: must be Lab/],
    ['kind: Lab\nmetadata: {name: x}\nspec: {subnet: "192.168", pods: [{name: a}]}', /bad\.yaml: spec\.subnet: must be "10\.N"/],
    ['kind: Lab\nmetadata: {name: x}\nspec: {pods: [{name: A_B}]}', /bad\.yaml: spec\.pods\[0\]\.name/],
    ['kind: Lab\nmetadata: {name: x}\nspec: {pods: [{name: a, serve: {app: echo, port: 70000}}]}', /bad\.yaml: spec\.pods\[0\]\.serve/],
    ['kind: Lab\nmetadata: {name: x}\nspec: {pods: [{name: a, ports: [{name: p, containerPort: 80, protocol: ICMP}]}]}', /spec\.pods\[0\]\.ports\[0\]\.protocol/],
    ['kind: Lab\nmetadata: {name: x}\nspec: {pods: [{name: a}], hosts: {svc: b}}', /spec\.hosts\.svc: names unknown pod b/],
    // Namespace labels written without `labels:` would otherwise give the namespace none, silently.
    ['kind: Lab\nmetadata: {name: x}\nspec: {pods: [{name: a}], namespaces: {empire: {team: empire}}}', /bad\.yaml: spec\.namespaces\.empire\.team: unknown field/],
  ])('rejects %#, naming the file and field', (text, message) => {
    expect(() => parseLabSpec(text, 'bad.yaml')).toThrow(message);
  });
});
