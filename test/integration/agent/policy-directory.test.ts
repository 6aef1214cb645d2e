/**
 * The watched policy directory: real files, the real watcher. A file that fails validation
 * keeps its last good policies in force; changes and deletions arrive within a second.
 */
import { mkdtempSync, rmSync, writeFileSync, renameSync, unlinkSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PolicyDirectory } from '../../../src/agent/policy-source.js';

const RULE1 = readFileSync(new URL('../../../deploy/lab/starwars/sw_l3_l4_policy.yaml', import.meta.url), 'utf8');

async function until(check: () => boolean, ms = 1000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return check();
}

describe('PolicyDirectory', () => {
  let dir: string;
  let pd: PolicyDirectory;
  let changes: number;
  const lines: string[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'membrane-policydir-'));
    changes = 0;
    lines.length = 0;
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
    pd = new PolicyDirectory(dir, log, () => changes++);
    pd.loadAll();
    await pd.watch();
  });

  afterEach(async () => {
    await pd.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const write = (name: string, text: string): void => {
    writeFileSync(join(dir, `.${name}.tmp`), text);
    renameSync(join(dir, `.${name}.tmp`), join(dir, name));
  };

  it('loads a new file, then keeps it in force when an edit is invalid, naming file, policy and field', async () => {
    write('rule1.yaml', RULE1);
    expect(await until(() => pd.policies().length === 1)).toBe(true);
    expect(pd.policies()[0]?.name).toBe('rule1');

    write('rule1.yaml', RULE1.replace('port: "80"', 'port: "99999"'));
    expect(await until(() => pd.problems().length > 0)).toBe(true);
    expect(pd.policies().map((p) => p.name)).toEqual(['rule1']);
    const problem = pd.problems()[0];
    expect(problem?.file).toBe(join(dir, 'rule1.yaml'));
    expect(problem?.name).toBe('rule1');
    expect(problem?.path).toMatch(/^spec\.ingress\[0\]\.toPorts\[0\]\.ports\[0\]\.port/);
    expect(lines.join('')).toContain('last good policies stay in force');

    write('rule1.yaml', RULE1);
    expect(await until(() => pd.problems().length === 0)).toBe(true);
  });

  it('a broken new file adds nothing, and deleting a file removes its policies', async () => {
    write('broken.yaml', 'apiVersion: cilium.io/v2\nkind: CiliumNetworkPolicy\nmetadata: {name: x}\nspec: {endpointSelector: {matchLabels: {a: b}}, ingress: [{toPortz: []}]}\n');
    expect(await until(() => pd.problems().length > 0)).toBe(true);
    expect(pd.policies()).toEqual([]);

    write('rule1.yaml', RULE1);
    expect(await until(() => pd.policies().length === 1)).toBe(true);
    const before = changes;
    unlinkSync(join(dir, 'rule1.yaml'));
    expect(await until(() => pd.policies().length === 0)).toBe(true);
    expect(changes).toBeGreaterThan(before);
  });

  it('ignores files that are not policy files', async () => {
    writeFileSync(join(dir, 'notes.txt'), 'not yaml: [');
    write('rule1.yaml', RULE1);
    expect(await until(() => pd.policies().length === 1)).toBe(true);
    expect(pd.problems()).toEqual([]);
  });

  it('a file invalid at the next start (a restart after a rejected edit) is enforced as it was last accepted; a removed file is forgotten', async () => {
    let saved: Record<string, string> = {};
    const store = { read: () => saved, save: (t: Record<string, string>) => void (saved = { ...t }) };
    const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(s) });
    const first = new PolicyDirectory(dir, log, () => {}, { lastGood: store });
    write('rule1.yaml', RULE1);
    write('never-good.yaml', RULE1.replace('name: "rule1"', 'name: "never"').replace('port: "80"', 'port: "99999"'));
    first.loadAll();
    expect(first.policies().map((p) => p.name)).toEqual(['rule1']);
    write('rule1.yaml', RULE1.replace('port: "80"', 'port: "99999"'));
    first.refresh([join(dir, 'rule1.yaml')]);
    expect(first.policies().map((p) => p.name)).toEqual(['rule1']);
    await first.close();

    // The restart: a new directory reader over the same files and saved texts.
    lines.length = 0;
    const again = new PolicyDirectory(dir, log, () => {}, { lastGood: store });
    again.loadAll();
    expect(again.policies().map((p) => p.name)).toEqual(['rule1']);
    expect(again.problems().map((p) => p.name).sort()).toEqual(['never', 'rule1']);
    expect(lines.join('')).toContain('enforcing its last good version');
    expect(lines.join('')).toContain('it was never accepted, so none of its policies is in force');

    unlinkSync(join(dir, 'rule1.yaml'));
    again.refresh([join(dir, 'rule1.yaml')]);
    expect(Object.keys(saved)).toEqual([]);
    await again.close();
    const third = new PolicyDirectory(dir, log, () => {}, { lastGood: store });
    write('rule1.yaml', RULE1.replace('port: "80"', 'port: "99999"'));
    third.loadAll();
    expect(third.policies()).toEqual([]);
    await third.close();
  });

  it('two files defining the same policy: the second is rejected naming the first, and accepted once the first lets go of it', async () => {
    write('a.yaml', RULE1);
    expect(await until(() => pd.policies().length === 1)).toBe(true);
    write('b.yaml', RULE1.replace('port: "80"', 'port: "443"'));
    expect(await until(() => pd.problems().length > 0)).toBe(true);
    expect(pd.policies().map((p) => p.file)).toEqual([join(dir, 'a.yaml')]);
    const problem = pd.problems()[0];
    expect(problem?.file).toBe(join(dir, 'b.yaml'));
    expect(problem?.name).toBe('rule1');
    expect(problem?.path).toBe('metadata.name');
    expect(problem?.message).toContain(`is already defined in ${join(dir, 'a.yaml')}`);

    unlinkSync(join(dir, 'a.yaml'));
    expect(await until(() => pd.problems().length === 0 && pd.policies().length === 1)).toBe(true);
    expect(pd.policies()[0]?.file).toBe(join(dir, 'b.yaml'));
  });

  it('a restart keeps the duplicate that was in force, whatever the file names, and an import of the policy wins over a file refused for it', async () => {
    let saved: Record<string, string> = {};
    const store = { read: () => saved, save: (t: Record<string, string>) => void (saved = { ...t }) };
    const log = pino({ level: 'silent' });
    const RULE2 = RULE1.replace('name: "rule1"', 'name: "rule2"');
    const first = new PolicyDirectory(dir, log, () => {}, { lastGood: store });
    write('b.yaml', `${RULE1}\n---\n${RULE2}`);
    first.refresh([join(dir, 'b.yaml')]);
    write('a.yaml', RULE1.replace('port: "80"', 'port: "443"'));
    first.refresh([join(dir, 'a.yaml')]);
    const inForce = (d: PolicyDirectory): string[] => d.policies().map((p) => `${p.name}@${p.file.slice(dir.length + 1)}`).sort();
    expect(inForce(first)).toEqual(['rule1@b.yaml', 'rule2@b.yaml']);
    await first.close();

    const again = new PolicyDirectory(dir, log, () => {}, { lastGood: store });
    again.loadAll();
    expect(inForce(again)).toEqual(['rule1@b.yaml', 'rule2@b.yaml']);
    expect(again.problems().map((p) => p.file)).toEqual([join(dir, 'a.yaml')]);

    // `policy import` of rule1 into c.yaml: b.yaml keeps only rule2, then c.yaml is written.
    write('b.yaml', RULE2);
    write('c.yaml', RULE1.replace('port: "80"', 'port: "8080"'));
    again.refresh([join(dir, 'b.yaml'), join(dir, 'c.yaml')]);
    expect(inForce(again)).toEqual(['rule1@c.yaml', 'rule2@b.yaml']);
    expect(again.problems().map((p) => p.file)).toEqual([join(dir, 'a.yaml')]);
    await again.close();
  });
});
