/**
 * Loading policy files: multi-document YAML (strict, bounded) → `PolicyObject`s or problems.
 * Never throws on bad input. A file with any problem yields no policies, so the caller keeps
 * the previous good state of that file.
 */
import { isAlias, LineCounter, parseAllDocuments, visit } from 'yaml';
import type { Document } from 'yaml';
import { Checker, describe, has } from './check.js';
import type { Json, JsonObject } from './check.js';
import { parseCidrGroupObject } from './cidr-group.js';
import { parseCiliumPolicyObject } from './cnp.js';
import { parseClusterNetworkPolicyObject } from './kcnp.js';
import { parseNetworkPolicyObject } from './knp.js';
import type { CidrGroup, LoadResult, PolicyKind, PolicyObject, PolicyProblem, Rule } from './types.js';

/** Largest policy file we parse (bytes of text). */
export const MAX_POLICY_FILE_BYTES = 4 * 1024 * 1024;
/** Most documents per file. */
export const MAX_POLICY_DOCUMENTS = 1000;
/** YAML alias expansion limit (billion-laughs guard). */
export const MAX_YAML_ALIASES = 100;

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const KINDS: Readonly<Record<string, { apiVersions: readonly string[]; namespaced: boolean }>> = {
  CiliumNetworkPolicy: { apiVersions: ['cilium.io/v2'], namespaced: true },
  CiliumClusterwideNetworkPolicy: { apiVersions: ['cilium.io/v2'], namespaced: false },
  NetworkPolicy: { apiVersions: ['networking.k8s.io/v1'], namespaced: true },
  // Served as v2alpha1 since Cilium 1.13 and also as v2 since 1.18.
  CiliumCIDRGroup: { apiVersions: ['cilium.io/v2alpha1', 'cilium.io/v2'], namespaced: false },
  // kubernetes-sigs/network-policy-api, as Cilium watches it (pkg/policy/k8s/cluster_network_policy.go).
  ClusterNetworkPolicy: { apiVersions: ['policy.networking.k8s.io/v1alpha2'], namespaced: false },
};

export interface LoadOptions {
  /** Namespace for namespaced kinds without metadata.namespace (default 'default'). */
  readonly defaultNamespace?: string;
}

/** The outcome for one policy document, for `policy validate -o json`. */
export interface DocumentResult {
  readonly file: string;
  readonly name: string;
  readonly kind: string;
  readonly namespace: string | undefined;
  readonly valid: boolean;
  readonly problems: readonly PolicyProblem[];
  /** Accepted but enforced fail-closed (see LoadResult.warnings). */
  readonly warnings: readonly PolicyProblem[];
  readonly policy: PolicyObject | undefined;
}

/** The same Kubernetes object: kind, namespace and name (what the API server keeps one of). */
export function sameObject(a: Pick<PolicyObject, 'kind' | 'namespace' | 'name'>, b: Pick<PolicyObject, 'kind' | 'namespace' | 'name'>): boolean {
  return a.kind === b.kind && a.namespace === b.namespace && a.name === b.name;
}

/**
 * The problem of a policy that another file already defines: Kubernetes holds one object per
 * kind, namespace and name, so of two files in the agent's policy directory defining the same
 * policy one is rejected whole. (`policy validate|trace` of several files judge each file alone,
 * as `kubectl apply` of them would replace a same-named object, not refuse it.)
 */
export function definedElsewhereProblem(p: PolicyObject, file: string, other: string): PolicyProblem {
  return { file, name: p.name, path: 'metadata.name', message: `${p.kind} ${p.namespace ? `${p.namespace}/` : ''}${p.name} is already defined in ${other}: one object per kind, namespace and name, as in Kubernetes` };
}

/**
 * One line: `FILE: POLICY: FIELD: message`, or `FILE:LINE:COLUMN: message` for a problem found
 * in the YAML text itself (no policy name or field to give yet).
 */
export function formatProblem(p: PolicyProblem): string {
  const where = p.line !== undefined ? `${p.file}:${p.line}:${p.column ?? 1}` : p.file;
  const parts = [where];
  if (p.name !== UNNAMED || p.path !== '') parts.push(p.name);
  if (p.path !== '') parts.push(p.path);
  return `${parts.join(': ')}: ${p.message}`;
}

/** `formatProblem` for a warning: the message starts with `warning: `. */
export function formatWarning(p: PolicyProblem): string {
  return formatProblem({ ...p, message: `warning: ${p.message}` });
}

const UNNAMED = '<unnamed>';

/** 1-based line and column of the first node of a document that is an alias (where toJS failed). */
function firstAliasPosition(doc: Document.Parsed, lines: LineCounter): { line: number; col: number } | undefined {
  let at: number | undefined;
  visit(doc, {
    Alias(_key, node) {
      if (isAlias(node) && node.range) {
        at = node.range[0];
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return at === undefined ? undefined : lines.linePos(at);
}

/** Parses a file and reports each document separately (valid or not). */
export function validatePolicyText(text: string, file: string, opts?: LoadOptions): DocumentResult[] {
  const defaultNamespace = opts?.defaultNamespace ?? 'default';
  const fileProblem = (message: string, path = '', pos?: { line: number; col: number }): DocumentResult => ({
    file,
    name: UNNAMED,
    kind: '',
    namespace: undefined,
    valid: false,
    problems: [{ file, name: UNNAMED, path, message, ...(pos ? { line: pos.line, column: pos.col } : {}) }],
    warnings: [],
    policy: undefined,
  });
  if (text.length > MAX_POLICY_FILE_BYTES) return [fileProblem(`file is larger than ${MAX_POLICY_FILE_BYTES} bytes`)];
  const lines = new LineCounter();
  let docs;
  try {
    docs = parseAllDocuments(text, { strict: true, uniqueKeys: true, prettyErrors: false, version: '1.2', lineCounter: lines });
  } catch (e) {
    return [fileProblem(`invalid YAML: ${e instanceof Error ? e.message : String(e)}`)];
  }
  if (!Array.isArray(docs)) {
    // An empty stream parses to an EmptyStream object.
    return [];
  }
  if (docs.length > MAX_POLICY_DOCUMENTS) return [fileProblem(`more than ${MAX_POLICY_DOCUMENTS} documents`)];
  const out: DocumentResult[] = [];
  docs.forEach((doc, di) => {
    // A syntax error is one fault even when the parser reports its consequences too: the
    // first error of the document, at its line and column.
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      out.push(fileProblem(`invalid YAML: ${e.message.split('\n')[0]}`, '', lines.linePos(e.pos[0])));
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
    } catch (e) {
      out.push(fileProblem(`invalid YAML: ${e instanceof Error ? e.message : String(e)}`, '', firstAliasPosition(doc, lines)));
      return;
    }
    if (value === null || value === undefined) return; // empty document
    const start = doc.contents?.range?.[0];
    const docPos = start === undefined ? undefined : lines.linePos(start);
    if (typeof value !== 'object' || Array.isArray(value)) {
      out.push(fileProblem(`a policy document must be an object, got ${describe(value)}`, '', docPos));
      return;
    }
    const o = value as JsonObject;
    if (o.kind === 'List' && Array.isArray(o.items)) {
      o.items.forEach((item, ii) => out.push(checkObject(item, file, defaultNamespace, `items[${ii}].`)));
      return;
    }
    out.push(checkObject(o, file, defaultNamespace, ''));
  });
  // Duplicate objects in one file are ambiguous.
  const seen = new Set<string>();
  for (let i = 0; i < out.length; i++) {
    const r = out[i]!;
    if (!r.policy) continue;
    const key = `${r.kind}/${r.namespace ?? ''}/${r.name}`;
    if (seen.has(key)) {
      out[i] = {
        ...r,
        valid: false,
        policy: undefined,
        warnings: [],
        problems: [{ file, name: r.name, path: 'metadata.name', message: `duplicate ${r.kind} ${r.namespace ? `${r.namespace}/` : ''}${r.name} in this file` }],
      };
    }
    seen.add(key);
  }
  return out;
}

function checkObject(v: unknown, file: string, defaultNamespace: string, prefix: string): DocumentResult {
  const c = new Checker();
  let name = '<unnamed>';
  let namespace: string | undefined;
  let kindText = '';
  const finish = (policy: PolicyObject | undefined): DocumentResult => {
    const problems = c.issues.map((i) => ({ file, name, path: prefix + i.path, message: i.message }));
    const warnings = problems.length ? [] : c.warnings.map((i) => ({ file, name, path: prefix + i.path, message: i.message }));
    return { file, name, kind: kindText, namespace, valid: problems.length === 0, problems, warnings, policy: problems.length === 0 ? policy : undefined };
  };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    c.report('', `a policy document must be an object, got ${describe(v)}`);
    return finish(undefined);
  }
  const o = v as JsonObject;
  const meta = has(o, 'metadata') ? c.object(o.metadata, 'metadata') : (c.report('metadata', 'required field is missing'), undefined);
  if (meta) {
    if (!has(meta, 'name')) c.report('metadata.name', 'required field is missing');
    else {
      const n = c.string(meta.name, 'metadata.name');
      if (n !== undefined) {
        if (n === '') c.report('metadata.name', 'required field is missing');
        else {
          name = n;
          if (n.length > 253 || !DNS1123_SUBDOMAIN.test(n)) {
            c.report('metadata.name', `invalid name ${JSON.stringify(n)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`);
          }
        }
      }
    }
  }
  const kind = has(o, 'kind') ? c.string(o.kind, 'kind') : (c.report('kind', 'required field is missing'), undefined);
  const apiVersion = has(o, 'apiVersion') ? c.string(o.apiVersion, 'apiVersion') : (c.report('apiVersion', 'required field is missing'), undefined);
  if (kind === undefined) return finish(undefined);
  kindText = kind;
  const info = KINDS[kind];
  if (!info) {
    c.report('kind', `unsupported kind ${JSON.stringify(kind)}: expected CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy, NetworkPolicy, CiliumCIDRGroup or ClusterNetworkPolicy`);
    return finish(undefined);
  }
  if (apiVersion !== undefined && !info.apiVersions.includes(apiVersion)) {
    c.report('apiVersion', `unsupported apiVersion ${JSON.stringify(apiVersion)} for ${kind}: expected ${info.apiVersions.join(' or ')}`);
  }
  if (info.namespaced) {
    namespace = defaultNamespace;
    if (meta && has(meta, 'namespace')) {
      const ns = c.string(meta.namespace, 'metadata.namespace');
      if (ns !== undefined && ns !== '') {
        if (ns.length > 63 || !DNS1123_LABEL.test(ns)) c.report('metadata.namespace', `invalid namespace ${JSON.stringify(ns)}: must be a lowercase RFC 1123 label`);
        namespace = ns;
      }
    }
  }
  let rules: Rule[] = [];
  let cidrGroup: CidrGroup | undefined;
  if (kind === 'NetworkPolicy') rules = parseNetworkPolicyObject(c, o, namespace ?? defaultNamespace);
  else if (kind === 'CiliumCIDRGroup') cidrGroup = parseCidrGroupObject(c, o);
  else if (kind === 'ClusterNetworkPolicy') rules = parseClusterNetworkPolicyObject(c, o);
  else rules = parseCiliumPolicyObject(c, o, namespace);
  return finish({ kind: kind as PolicyKind, name, namespace, file, rules, ...(cidrGroup ? { cidrGroup } : {}) });
}

/**
 * Loads every policy of a file. If any document has a problem, `policies` is empty and
 * `problems` lists every problem of the file.
 */
export function loadPolicyText(text: string, file: string, opts?: LoadOptions): LoadResult {
  const results = validatePolicyText(text, file, opts);
  const problems = results.flatMap((r) => r.problems);
  if (problems.length > 0) return { policies: [], problems, warnings: [] };
  return { policies: results.flatMap((r) => (r.policy ? [r.policy] : [])), problems: [], warnings: results.flatMap((r) => r.warnings) };
}

export type { Json };
