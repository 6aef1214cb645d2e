/**
 * The layering of ../shared/DESIGN.md, checked on every import in src/: a module reaches
 * another only through its index.ts, and only downwards.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

/**
 * Which modules each module may import (besides itself). `codes` (drop reasons, verdicts, event
 * types shared by kernel, agent and printers) is a leaf every module may import; so is `re2` (the
 * linear-time regex engine for every pattern matched against pod data).
 */
const ALLOWED: Record<string, readonly string[]> = {
  codes: [],
  errors: [],
  re2: ['errors'],
  policy: ['codes', 'errors', 're2'],
  fqdn: ['codes', 'errors', 're2', 'policy'],
  datapath: ['codes', 'errors'],
  observe: ['codes', 'errors', 'policy', 're2'],
  l7proxy: ['codes', 'errors', 'observe', 'policy', 'datapath', 're2', 'tracing'],
  dnsproxy: ['codes', 'errors', 'observe', 'policy', 'datapath', 're2', 'fqdn', 'tracing'],
  lab: ['codes', 'errors', 'datapath'],
  metrics: ['codes', 'errors', 'observe', 'datapath'],
  tracing: ['errors'],
  hubble: ['codes', 'errors', 'observe', 'policy', 're2'],
  proxyworker: ['codes', 'errors', 'observe', 'policy', 'datapath', 'l7proxy', 'dnsproxy', 'fqdn', 're2', 'tracing', 'metrics'],
  agent: ['codes', 'errors', 'policy', 'datapath', 'observe', 'l7proxy', 're2', 'fqdn', 'dnsproxy', 'hubble', 'proxyworker', 'metrics', 'tracing'],
  cli: ['codes', 'errors', 'policy', 'datapath', 'observe', 'l7proxy', 'agent', 'lab', 're2', 'fqdn', 'dnsproxy', 'hubble', 'metrics', 'tracing'],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const moduleOf = (file: string): string => relative(SRC, file).split(sep)[0] ?? '';

const imports = files(SRC).flatMap((file) =>
  [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)].map((m) => ({
    file: relative(SRC, file),
    from: moduleOf(file),
    target: resolve(dirname(file), m[1] ?? ''),
  })),
);

describe('module layering', () => {
  it('finds the modules it checks', () => {
    const modules = readdirSync(SRC).filter((f) => statSync(join(SRC, f)).isDirectory());
    expect(new Set(modules)).toEqual(new Set(Object.keys(ALLOWED)));
    expect(imports.length).toBeGreaterThan(50);
  });

  it('crosses a module boundary only through its index.js, and only downwards', () => {
    const violations = imports
      .filter((i) => moduleOf(i.target) !== i.from)
      .flatMap((i) => {
        const to = moduleOf(i.target);
        const rel = relative(join(SRC, to), i.target);
        const problems: string[] = [];
        if (!(ALLOWED[i.from] ?? []).includes(to)) problems.push(`${i.file}: ${i.from} may not import ${to}`);
        if (rel !== 'index.js') problems.push(`${i.file}: imports ${to}/${rel} instead of ${to}/index.js`);
        return problems;
      });
    expect(violations).toEqual([]);
  });
});
