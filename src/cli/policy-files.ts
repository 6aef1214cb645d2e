/** Offline policy commands: reading files and directories for `policy validate` and `trace`. */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadPolicyText, type PolicyObject, type PolicyProblem } from '../policy/index.js';

const POLICY_FILE = /\.(ya?ml|json)$/;

export function expandPolicyPaths(paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const p of paths) {
    if (statSync(p).isDirectory()) {
      for (const f of readdirSync(p).sort()) if (POLICY_FILE.test(f)) files.push(join(p, f));
    } else {
      files.push(p);
    }
  }
  return files;
}

export interface FileReport {
  readonly file: string;
  readonly policies: PolicyObject[];
  readonly problems: PolicyProblem[];
}

export function loadPolicyFiles(paths: readonly string[]): FileReport[] {
  return expandPolicyPaths(paths).map((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      return { file, policies: [], problems: [{ file, name: '<unnamed>', path: '', message: (err as Error).message }] };
    }
    const r = loadPolicyText(text, file);
    return { file, policies: r.policies, problems: r.problems };
  });
}

/** `policy validate -o json`: one record per policy (or per unnamed document with problems). */
export function validationJson(reports: readonly FileReport[]) {
  const out: { file: string; name: string; valid: boolean; errors: { path: string; message: string }[] }[] = [];
  for (const r of reports) {
    const names = new Set([...r.policies.map((p) => p.name), ...r.problems.map((p) => p.name)]);
    for (const name of names) {
      const errors = r.problems.filter((p) => p.name === name).map((p) => ({ path: p.path, message: p.message }));
      out.push({ file: r.file, name, valid: errors.length === 0, errors });
    }
  }
  return out;
}
