/**
 * Issue 7: a policy the agent accepts but enforces fail-closed (a Kafka rule, mutual
 * authentication) is logged as a warning and reported by `PolicyDirectory.warnings()`, which
 * `membrane status` lists as `policyWarnings`, as long as that policy is in force.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PolicyDirectory } from '../../../src/agent/policy-source.js';

const KAFKA = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: kafka, namespace: default}
spec:
  endpointSelector: {matchLabels: {app: kafka}}
  ingress:
  - fromEndpoints: [{matchLabels: {app: empire-hq}}]
    toPorts:
    - ports: [{port: "9092", protocol: TCP}]
      rules: {kafka: [{role: produce, topic: deathstar-plans}]}
`;
const WARNING = 'Membrane does not parse Kafka: port 9092/TCP fails closed (the connections this rule allows there are refused)';

describe('issue-7 the agent reports fail-closed policies', () => {
  let dir: string;
  const lines: { level: number; msg: string; file?: string; field?: string }[] = [];
  let pd: PolicyDirectory;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'membrane-policy-warnings-'));
    lines.length = 0;
    pd = new PolicyDirectory(dir, pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) }), () => {});
  });
  afterEach(async () => {
    await pd.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('issue-7 a valid Kafka policy is loaded, logged at warn level and listed while it is in force', () => {
    const file = join(dir, 'kafka.yaml');
    writeFileSync(file, KAFKA);
    pd.loadAll();
    expect(pd.policies().map((p) => p.name)).toEqual(['kafka']);
    expect(pd.warnings().map((w) => [w.file, w.name, w.path, w.message])).toEqual([[file, 'kafka', 'spec.ingress[0].toPorts[0].rules.kafka', WARNING]]);
    const warn = lines.filter((l) => l.level === 40);
    expect(warn.map((l) => l.msg)).toEqual([`${file}: kafka: spec.ingress[0].toPorts[0].rules.kafka: warning: ${WARNING}`]);

    // An invalid edit is rejected: the policy in force, and its warning, stay.
    writeFileSync(file, KAFKA.replace('role: produce', 'role: bogus'));
    pd.refresh([file]);
    expect(pd.problems().map((p) => p.message)).toEqual(['invalid Kafka Role "bogus"']);
    expect(pd.warnings()).toHaveLength(1);

    // A fixed edit without Kafka clears the warning.
    writeFileSync(file, KAFKA.replace(/\s+rules: .*\n/, '\n'));
    pd.refresh([file]);
    expect(pd.problems()).toEqual([]);
    expect(pd.warnings()).toEqual([]);
  });
});
