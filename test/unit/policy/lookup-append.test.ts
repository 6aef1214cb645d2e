/**
 * issue-8/9 lookups over entries grown by `appendEntries` (what a proxy worker holds after each
 * FQDN update) answer exactly as over the same entries in a fresh array, after any chain of
 * appends — entries of one identity spread over several appends, identity-0 entries appended,
 * arrays never looked up in between, chains longer than the index keeps layered — and an array
 * appended to keeps answering for its own entries only.
 */
import { describe, expect, it } from 'vitest';
import { appendEntries, appendList, extendsList, lookupPolicy, type DirectionPolicy, type MapEntry } from '../../../src/policy/index.js';

const entry = (identity: number, port: number, verdict: MapEntry['verdict'], prefix = 16): MapEntry => ({
  identity,
  protocol: port === 0 ? 0 : 6,
  port,
  portPrefixLen: port === 0 ? 0 : prefix,
  verdict,
  derivedFrom: [],
});

describe('lookups over appended entries', () => {
  it('equal lookups over a fresh copy, step after step, and the arrays before keep their own answers', () => {
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const verdicts: MapEntry['verdict'][] = ['allow', 'deny', 'redirect'];
    const ids = [0, 1, 2, 3, 4, 5, 6, 7];
    const ports = [0, 53, 80, 443, 8080];
    const random = (): MapEntry => entry(ids[rand(ids.length)]!, ports[rand(ports.length)]!, verdicts[rand(3)]!, [16, 12, 8][rand(3)]);
    let entries: readonly MapEntry[] = Array.from({ length: 20 }, random);
    const history: { entries: readonly MapEntry[]; copy: MapEntry[] }[] = [];
    const answers = (dir: DirectionPolicy): string[] => {
      const out: string[] = [];
      for (const id of ids) for (const port of [53, 80, 443, 8080, 9000]) out.push(JSON.stringify(lookupPolicy(dir, id, 6, port)));
      return out;
    };
    for (let step = 0; step < 80; step++) {
      entries = appendEntries(entries, Array.from({ length: 1 + rand(3) }, random));
      history.push({ entries, copy: [...entries] });
      // Some arrays are never looked up before the next append.
      if (rand(3) === 0) continue;
      expect([step, answers({ enforced: true, entries })]).toEqual([step, answers({ enforced: true, entries: [...entries] })]);
    }
    for (const [i, h] of history.entries()) expect([i, answers({ enforced: false, entries: h.entries })]).toEqual([i, answers({ enforced: false, entries: h.copy })]);
  });

  it('an identity whose entries came in two appends gets the best of both', () => {
    const a = appendEntries([entry(0, 0, 'allow')], [entry(9, 443, 'allow', 8)]);
    lookupPolicy({ enforced: true, entries: a }, 9, 6, 443);
    const b = appendEntries(a, [entry(9, 443, 'redirect', 16)]);
    expect(lookupPolicy({ enforced: true, entries: b }, 9, 6, 443).verdict).toBe('redirect');
    expect(lookupPolicy({ enforced: true, entries: a }, 9, 6, 443).verdict).toBe('allow');
  });

  it('extendsList: true for an append (one or several), the same list or an equal prefix; false for any other change', () => {
    const a = [entry(1, 80, 'allow'), entry(2, 80, 'allow')];
    const b = appendList(a, [entry(3, 80, 'allow')]);
    const c = appendEntries(b, [entry(4, 80, 'allow')]);
    expect([extendsList(b, a), extendsList(c, b), extendsList(c, a), extendsList(a, a), extendsList([...b], a)]).toEqual([true, true, true, true, true]);
    expect([extendsList(a, b), extendsList([a[1]!, a[0]!, b[2]!], a), extendsList([entry(1, 80, 'allow'), a[1]!], a)]).toEqual([false, false, false]);
  });
});

describe('appendList keeps no earlier version alive', () => {
  it('a list appended to many times does not retain the lists it grew from', async () => {
    const { setFlagsFromString } = await import('node:v8');
    const { runInNewContext } = await import('node:vm');
    setFlagsFromString('--expose-gc');
    const collect = runInNewContext('gc') as () => void;
    // Built in a function so that nothing but the returned WeakRefs points at the earlier lists.
    const grow = (): { list: readonly number[]; earlier: WeakRef<readonly number[]>[] } => {
      let list: readonly number[] = new Array<number>(50_000).fill(1);
      const earlier: WeakRef<readonly number[]>[] = [];
      for (let i = 0; i < 50; i++) {
        earlier.push(new WeakRef(list));
        list = appendList(list, [i]);
      }
      return { list, earlier };
    };
    const { list, earlier } = grow();
    await new Promise((r) => setTimeout(r, 0));
    collect();
    expect(list.length).toBe(50_050);
    // The latest list still extends its parent while the parent lives; once collected, the earlier
    // versions are garbage (a strong parent link kept all 50, ~20 MB here).
    expect(earlier.filter((w) => w.deref() !== undefined)).toEqual([]);
  });
});
