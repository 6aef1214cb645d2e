/** Lab specs with a DNS server and a world: deploy/lab/mediabot.yaml, the dnsmasq config, the errors. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { dnsmasqConfig, dnsPod, parseLabSpec, podAddress, worldIfname, worldLink } from '../../../src/lab/index.js';

const MEDIABOT = readFileSync(new URL('../../../deploy/lab/mediabot.yaml', import.meta.url), 'utf8');

describe('mediabot lab spec', () => {
  const spec = parseLabSpec(MEDIABOT, 'mediabot.yaml');

  it('has the reference pods: mediabot (org=empire, class=mediabot) and kube-dns in kube-system', () => {
    expect(spec.pods.map((p) => [p.name, p.namespace, p.labels])).toEqual([
      ['mediabot', 'default', { org: 'empire', class: 'mediabot', app: 'mediabot' }],
      ['kube-dns', 'kube-system', { 'k8s-app': 'kube-dns' }],
    ]);
    const dns = dnsPod(spec);
    expect(dns?.name).toBe('kube-dns');
    expect(dns && podAddress(spec, dns).pod).toBe('10.78.2.2');
  });

  it('answers the reference names from world addresses, through CNAME chains and several A records', () => {
    const records = Object.fromEntries((dnsPod(spec)?.serve?.dns?.records ?? []).map((r) => [r.name, r.a ?? r.cname]));
    expect(records['api.github.com']).toEqual(['10.78.200.20', '10.78.200.21']);
    expect(records['support.github.com']).toBe('github-support.edge.example.net');
    expect(records['github.com']).toEqual(['10.78.200.10']);
    expect(spec.world?.sites.find((s) => s.host === 'support.github.com')?.status).toBe(302);
    expect(spec.world?.sites.find((s) => s.host === 'api.github.com')?.status).toBe(200);
    expect(worldIfname(spec.name)).toBe('mw-mediabot');
    expect(worldLink(spec.subnet)).toEqual({ node: '10.78.255.1', world: '10.78.255.2' });
  });

  it('generates a dnsmasq config with no upstream: local zones, host-records with TTLs, CNAMEs', () => {
    const dns = dnsPod(spec)?.serve?.dns;
    if (!dns) throw new Error('no dns');
    const conf = dnsmasqConfig(dns, 53).split('\n');
    expect(conf).toContain('no-resolv');
    expect(conf).toContain('no-hosts');
    expect(conf.some((l) => l.startsWith('server='))).toBe(false);
    expect(conf).toContain('local=/github.com/');
    expect(conf).toContain('host-record=api.github.com,10.78.200.20,60');
    expect(conf).toContain('host-record=api.github.com,10.78.200.21,60');
    expect(conf).toContain('cname=github-support.edge.example.net,edge-a.example.net,30');
    expect(conf).toContain('log-queries');
    expect(dnsmasqConfig({ ...dns, logQueries: false }, 53).split('\n')).not.toContain('log-queries');
  });
});

const base = (dns: string, world = ''): string => `kind: Lab
metadata: {name: t}
spec:
  subnet: "10.9"
  pods:
    - name: bot
    - name: dns
      serve:
        app: dns
        port: 53
        dns: ${dns}
${world}`;
const WORLD = `  world: {name: w, addresses: ["10.9.200.1"], sites: [{host: a.example.com}]}`;

describe('lab spec: dns and world errors name the field', () => {
  it.each([
    [base('{records: [{name: a.example.com, a: ["10.9.200.1"]}]}', WORLD), null],
    [base('{records: [{name: a.example.com, a: ["10.9.200.2"]}]}', WORLD), /records\[0\]\.a\[0\]: 10\.9\.200\.2 is neither a pod address nor a world address/],
    [base('{records: [{name: a.example.com, a: ["8.8.8.8"]}]}'), /records\[0\]\.a\[0\]: 8\.8\.8\.8 is neither/],
    [base('{records: [{name: a.example.com, a: ["10.9.1.2"], cname: b.example.com}]}'), /records\[0\]: needs exactly one of a/],
    [base('{records: [{name: a.example.com, cname: b.example.com}]}'), /records\[0\]\.cname: b\.example\.com has no record/],
    [base('{records: [{name: a.example.com, cname: b.example.com}, {name: b.example.com, cname: a.example.com}]}'), /records\[0\]\.cname: the CNAME chain from a\.example\.com loops/],
    [base('{records: [{name: A.Example.com, a: ["10.9.1.2"]}]}'), /records\[0\]\.name: must be a lower-case DNS name/],
    [base('{records: [{name: a.example.com, a: ["10.9.1.2"]}, {name: a.example.com, a: ["10.9.2.2"]}]}'), /records\[1\]\.name: a\.example\.com has two records/],
    [base('{records: [{name: a.example.com, a: ["10.9.1.2"], ttl: -1}]}'), /records\[0\]\.ttl: must be whole seconds/],
    [base('{records: []}'), /serve\.dns\.records: must list at least one record/],
    [base('{logQueries: "yes", records: [{name: a.example.com, a: ["10.9.1.2"]}]}'), /serve\.dns\.logQueries: must be true or false/],
    [base('{zones: ["-bad"], records: [{name: a.example.com, a: ["10.9.1.2"]}]}'), /serve\.dns\.zones\[0\]/],
    [base('{records: [{name: a.example.com, a: ["10.9.1.2"]}]}', '  world: {name: w, addresses: ["10.9.1.7"], sites: [{host: a.example.com}]}'), /spec\.world\.addresses\[0\]: 10\.9\.1\.7 is not a world address/],
    [base('{records: [{name: a.example.com, a: ["10.9.1.2"]}]}', '  world: {name: w, addresses: ["10.9.255.2"], sites: [{host: a.example.com}]}'), /spec\.world\.addresses\[0\]/],
    [base('{records: [{name: a.example.com, a: ["10.9.1.2"]}]}', '  world: {name: bot, addresses: ["10.9.200.1"], sites: [{host: a.example.com}]}'), /spec\.world\.name: bot is also a pod name/],
    [base('{records: [{name: a.example.com, a: ["10.9.1.2"]}]}', '  world: {name: w, addresses: ["10.9.200.1"], sites: [{host: a.example.com, status: 302}]}'), /sites\[0\]\.location: a 302 redirect needs a location/],
    [base('{records: [{name: a.example.com, a: ["10.9.1.2"]}]}', '  world: {name: w, addresses: ["10.9.200.1"], sites: []}'), /spec\.world\.sites: must list at least one site/],
  ])('case %#', (text, message) => {
    if (message === null) expect(() => parseLabSpec(text, 'bad.yaml')).not.toThrow();
    else expect(() => parseLabSpec(text, 'bad.yaml')).toThrow(message);
  });

  it('dns goes with app: dns only, one DNS server per lab', () => {
    expect(() => parseLabSpec('kind: Lab\nmetadata: {name: t}\nspec: {pods: [{name: a, serve: {app: echo, port: 80, dns: {records: []}}}]}', 'bad.yaml')).toThrow(
      /spec\.pods\[0\]\.serve\.dns: goes with app: dns/,
    );
    expect(() => parseLabSpec('kind: Lab\nmetadata: {name: t}\nspec: {pods: [{name: a, serve: {app: dns, port: 53}}]}', 'bad.yaml')).toThrow(/serve\.dns/);
    const two = 'kind: Lab\nmetadata: {name: t}\nspec:\n  pods:\n' + ['a', 'b'].map((n) => `    - {name: ${n}, serve: {app: dns, port: 53, dns: {records: [{name: x.example, a: ["10.77.1.2"]}]}}}\n`).join('');
    expect(() => parseLabSpec(two, 'bad.yaml')).toThrow(/spec\.pods: one DNS server per lab \(a, b\)/);
  });
});
