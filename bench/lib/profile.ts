/**
 * A V8 CPU profile (`.cpuprofile`, from node:inspector's Profiler.stop) summarised for
 * RESULTS.md: the share of samples that were idle, garbage collection, and the functions with the
 * most self time (name, file:line), as percentages of the busy samples.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
}

export interface ProfileSummary {
  readonly samples: number;
  /** Share of all samples the thread was idle (`(idle)`), %. */
  readonly idlePct: number;
  /** Share of busy samples in `(garbage collector)`, %. */
  readonly gcPct: number;
  /** Functions with the most self time, % of busy samples. */
  readonly top: readonly { readonly frame: string; readonly pct: number }[];
}

export function summariseProfile(file: string, topN = 8): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const counts = new Map<string, number>();
  let idle = 0;
  let gc = 0;
  for (const id of p.samples) {
    const cf = byId.get(id)?.callFrame;
    const name = cf?.functionName || '(anonymous)';
    if (name === '(idle)') {
      idle++;
      continue;
    }
    if (name === '(garbage collector)') gc++;
    const where = cf?.url ? ` ${basename(cf.url)}:${cf.lineNumber + 1}` : '';
    const frame = `${name}${where}`;
    counts.set(frame, (counts.get(frame) ?? 0) + 1);
  }
  const busy = p.samples.length - idle;
  const pct = (n: number): number => (busy ? (100 * n) / busy : 0);
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, topN).map(([frame, n]) => ({ frame, pct: pct(n) }));
  return { samples: p.samples.length, idlePct: p.samples.length ? (100 * idle) / p.samples.length : 0, gcPct: pct(gc), top };
}

/** One line for RESULTS.md: `main thread busy 97%; GC 10%; top self time: f a.js:3 18%, …`. */
export function profileLine(s: ProfileSummary): string {
  const top = s.top.map((t) => `${t.frame} ${t.pct.toFixed(1)}%`).join(', ');
  return `main thread busy ${(100 - s.idlePct).toFixed(0)}% of the run; GC ${s.gcPct.toFixed(1)}% of busy time; top self time: ${top}`;
}
