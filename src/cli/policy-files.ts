/** Offline policy commands: reading files and directories for `policy validate` and `trace`. */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { AgentClient } from './client.js';
import { validatePolicyText, type DocumentResult, type PolicyObject, type PolicyProblem } from '../policy/index.js';

const POLICY_FILE = /\.(ya?ml|json)$/;

/** Files named, and the policy files inside directories named; a missing path stays in the list
 * so it is reported as a problem of its own instead of hiding the others. */
export function expandPolicyPaths(paths: readonly string[]): string[] {
  const files: string[] = [];
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      isDir = false;
    }
    if (isDir) {
      for (const f of readdirSync(p).sort()) if (POLICY_FILE.test(f)) files.push(join(p, f));
    } else {
      files.push(p);
    }
  }
  return files;
}

export interface FileReport {
  readonly file: string;
  readonly documents: readonly DocumentResult[];
  /** The file's policies, only when every document is valid (a file is accepted whole or not at all). */
  readonly policies: PolicyObject[];
  readonly problems: PolicyProblem[];
}

export function loadPolicyFiles(paths: readonly string[]): FileReport[] {
  return expandPolicyPaths(paths).map((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const message = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message;
      const problem: PolicyProblem = { file, name: '<unnamed>', path: '', message };
      return { file, documents: [], policies: [], problems: [problem] };
    }
    const documents = validatePolicyText(text, file);
    const problems = documents.flatMap((d) => d.problems);
    const policies = problems.length ? [] : documents.flatMap((d) => (d.policy ? [d.policy] : []));
    return { file, documents, policies, problems };
  });
}

/** `policy validate -o json`: one record per policy document, valid ones included. */
export function validationJson(reports: readonly FileReport[]) {
  return reports.flatMap((r) => {
    if (r.documents.length === 0) {
      return r.problems.map((p) => ({ file: r.file, name: p.name, valid: false, errors: [{ path: p.path, message: p.message }] }));
    }
    return r.documents.map((d) => ({
      file: r.file,
      name: d.name,
      valid: d.valid,
      errors: d.problems.map((p) => ({ path: p.path, message: p.message })),
    }));
  });
}

/** `policy import`: the agent validates the file and writes it into its watched directory. */
export function importPolicyFile(client: AgentClient, file: string): Promise<{ file: string; policies: string[]; revision: number }> {
  return client.request('PUT', `/v1/policy?file=${encodeURIComponent(basename(file))}`, readFileSync(file, 'utf8'));
}
