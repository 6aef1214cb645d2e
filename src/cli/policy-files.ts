/** Offline policy commands: reading files and directories for `policy validate` and `trace`. */
import { readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { AgentClient } from './client.js';
import { readInputFile } from './input-file.js';
import { validatePolicyText, type DocumentResult, type PolicyObject, type PolicyProblem } from '../policy/index.js';

const POLICY_FILE = /\.(ya?ml|json)$/;

/**
 * Files named, and the policy files (`*.yaml`, `*.yml`, `*.json`) inside directories named and
 * their subdirectories, in name order, as `cilium policy validate DIR` walks a tree. Entries whose
 * name starts with `.` are skipped (editor files, the `..data` links of a mounted ConfigMap), and
 * a directory reached twice through links is read once. A missing path stays in the list so it is
 * reported as a problem of its own instead of hiding the others.
 */
export function expandPolicyPaths(paths: readonly string[]): string[] {
  const files: string[] = [];
  const seen = new Set<string>();
  for (const p of paths) {
    if (isDirectory(p)) walkPolicyDir(p, files, seen);
    else files.push(p);
  }
  return files;
}

function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function walkPolicyDir(dir: string, files: string[], seen: Set<string>): void {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return;
  }
  if (seen.has(real)) return;
  seen.add(real);
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const p = join(dir, name);
    if (isDirectory(p)) walkPolicyDir(p, files, seen);
    else if (POLICY_FILE.test(name)) files.push(p);
  }
}

export interface FileReport {
  readonly file: string;
  readonly documents: readonly DocumentResult[];
  /** The file's policies, only when every document is valid (a file is accepted whole or not at all). */
  readonly policies: PolicyObject[];
  readonly problems: PolicyProblem[];
  /** Of a valid file: what Membrane accepts but enforces fail-closed. */
  readonly warnings: PolicyProblem[];
}

export function loadPolicyFiles(paths: readonly string[]): FileReport[] {
  return expandPolicyPaths(paths).map((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const message = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message;
      const problem: PolicyProblem = { file, name: '<unnamed>', path: '', message };
      return { file, documents: [], policies: [], problems: [problem], warnings: [] };
    }
    const documents = validatePolicyText(text, file);
    const problems = documents.flatMap((d) => d.problems);
    const policies = problems.length ? [] : documents.flatMap((d) => (d.policy ? [d.policy] : []));
    const warnings = problems.length ? [] : documents.flatMap((d) => d.warnings);
    return { file, documents, policies, problems, warnings };
  });
}

interface JsonIssue {
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

/** `policy validate -o json`: one record per policy document, valid ones included. */
interface JsonDocument {
  readonly file: string;
  readonly name: string;
  readonly valid: boolean;
  readonly errors: JsonIssue[];
  readonly warnings: JsonIssue[];
}

export function validationJson(reports: readonly FileReport[]): JsonDocument[] {
  return reports.flatMap((r): JsonDocument[] => {
    if (r.documents.length === 0) {
      return r.problems.map((p) => ({ file: r.file, name: p.name, valid: false, errors: [{ path: p.path, message: p.message }], warnings: [] }));
    }
    const position = (p: PolicyProblem) => (p.line !== undefined ? { line: p.line, column: p.column ?? 1 } : {});
    return r.documents.map((d) => ({
      file: r.file,
      name: d.name,
      valid: d.valid,
      errors: d.problems.map((p) => ({ path: p.path, message: p.message, ...position(p) })),
      warnings: d.warnings.map((p) => ({ path: p.path, message: p.message })),
    }));
  });
}

export interface ImportedPolicy {
  readonly kind: string;
  readonly namespace: string | null;
  readonly name: string;
  /** The file it was in. */
  readonly file: string;
  /** The file held nothing else and was deleted. */
  readonly fileRemoved: boolean;
}

/**
 * `policy import`: the agent validates the file and writes it into its watched directory. The
 * answer names the policies of other files it replaced and those the overwritten file lost
 * (absent from an older agent). Errors: MEMBRANE_ERR_POLICY_IO naming an unreadable file.
 */
export function importPolicyFile(
  client: AgentClient,
  file: string,
): Promise<{ file: string; policies: string[]; revision: number; replaced?: ImportedPolicy[]; dropped?: ImportedPolicy[] }> {
  return client.request('PUT', `/v1/policy?file=${encodeURIComponent(basename(file))}`, readInputFile(file, 'MEMBRANE_ERR_POLICY_IO'));
}
