/**
 * What the runner writes: tables on the terminal, `bench/results.json` (every benchmark's rows;
 * a run of some benchmarks replaces only theirs) and `bench/RESULTS.md` (the machine and versions
 * of this run, then one section per benchmark between `<!-- bench:NAME -->` markers, each with
 * the date it was measured, so a partial run keeps the other sections as they were).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import type { BenchResult, BenchRow, BenchTable } from './types.js';

/** A fixed-width text table. */
export function textTable(t: BenchTable): string {
  const all = [t.header, ...t.rows];
  const widths = t.header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [t.title, line(t.header), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)].join('\n');
}

export function markdownTable(t: BenchTable): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  return [
    `**${t.title}**`,
    '',
    `| ${t.header.map(esc).join(' | ')} |`,
    `|${t.header.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

/** Rows of `results.json` with those of the benchmarks in `replaced` swapped for `fresh`. */
export function mergeRows(file: string, replaced: ReadonlySet<string>, fresh: readonly BenchRow[]): BenchRow[] {
  let old: BenchRow[] = [];
  if (existsSync(file)) {
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as unknown;
      if (Array.isArray(parsed)) old = parsed as BenchRow[];
    } catch {
      // an unreadable file is replaced: the rows of this run are what it holds then
    }
  }
  return [...old.filter((r) => !replaced.has(r.benchmark)), ...fresh];
}

export function writeRows(file: string, rows: readonly BenchRow[]): void {
  // NaN (a figure that could not be measured) is written as null: JSON has no NaN.
  writeFileSync(file, JSON.stringify(rows, (_, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
}

function debVersion(pkg: string): string | null {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/** The machine this run measured: CPU model, cores, kernel, RAM. */
export function machine(): string[] {
  const model = cpus()[0]?.model.trim() ?? 'unknown';
  return [
    `CPU: ${model}, ${cpus().length} cores`,
    `kernel: Linux ${release()}`,
    `RAM: ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
  ];
}

/** Versions of Node.js and of the Debian packages the benchmarks run (those installed). */
export function versions(agentNode?: string): string[] {
  const out = [`node: ${process.version}${agentNode && agentNode !== process.version ? ` (agent: ${agentNode})` : ''}`];
  for (const pkg of ['haproxy', 'nginx', 'wrk', 'nghttp2-client', 'dnsperf', 'dnsdist', 'dnsmasq-base', 'iperf3', 'iptables', 'iproute2', 'clang']) {
    const v = debVersion(pkg);
    if (v) out.push(`${pkg}: ${v}`);
  }
  return out;
}

const fmtDate = (d: Date): string => d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');

/** One benchmark's section: its tables, targets (met or missed, and what limits a missed one), notes. */
export function section(name: string, title: string, result: BenchResult, at: Date, quick: boolean, runs: number): string {
  const how = quick ? ` with \`--quick\` (${runs} short run(s) per variant${runs < 3 ? ': indicative only' : ''})` : ` with ${runs} run(s) per variant`;
  const parts = [`## ${title} (\`${name}\`)`, '', `Measured ${fmtDate(at)}${how}.`, ''];
  for (const t of result.tables) parts.push(markdownTable(t), '');
  if (result.targets.length) {
    parts.push('**Targets**', '');
    for (const t of result.targets) {
      parts.push(`- ${t.met ? '✅ met' : '❌ missed'}: ${t.target} — ${t.figure}`);
      if (!t.met && t.limit) parts.push(`  - what limits it: ${t.limit}`);
    }
    parts.push('');
  }
  if (result.notes?.length) {
    parts.push('**Notes**', '');
    for (const n of result.notes) parts.push(`- ${n}`);
    parts.push('');
  }
  return parts.join('\n');
}

const START = (name: string): string => `<!-- bench:${name} -->`;
const END = (name: string): string => `<!-- /bench:${name} -->`;

/** Sections of an existing RESULTS.md, by benchmark name. */
function oldSections(file: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(file)) return out;
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/<!-- bench:([a-z0-9-]+) -->\n([\s\S]*?)<!-- \/bench:\1 -->/g)) out.set(m[1]!, m[2]!);
  return out;
}

/**
 * Rewrites RESULTS.md: header (how to run, machine, versions, date of this run), then a section
 * per benchmark in `order` — fresh ones from `fresh`, the others kept from the file as they were.
 */
export function writeResultsMd(file: string, order: readonly string[], fresh: ReadonlyMap<string, string>, header: readonly string[]): void {
  const old = oldSections(file);
  const names = [...order, ...[...old.keys()].filter((n) => !order.includes(n))];
  const body: string[] = [];
  for (const n of names) {
    const s = fresh.get(n) ?? old.get(n);
    if (s !== undefined) body.push(`${START(n)}\n${s.endsWith('\n') ? s : s + '\n'}${END(n)}`);
  }
  writeFileSync(file, [...header, '', ...body.flatMap((b) => [b, ''])].join('\n'));
}

export { fmtDate };
