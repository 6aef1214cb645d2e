import { describe, expect, it, vi } from 'vitest';
import { FlowRing, type Flow } from '../../../src/observe/index.js';
import { starWarsFlows } from './fixtures.js';

function flows(n: number): Flow[] {
  const base = starWarsFlows()[0] as Flow;
  return Array.from({ length: n }, (_, i) => ({ ...base, uuid: `f${i}` }));
}
const ids = (fs: Flow[]): string[] => fs.map((f) => f.uuid);

describe('FlowRing', () => {
  it('keeps the last `capacity` flows, oldest first', () => {
    const ring = new FlowRing({ capacity: 3 });
    expect(ring.last(10)).toEqual([]);
    for (const f of flows(5)) ring.push(f);
    expect(ring.size).toBe(3);
    expect(ring.seen).toBe(5);
    expect(ids(ring.last(10))).toEqual(['f2', 'f3', 'f4']);
    expect(ids(ring.last(2))).toEqual(['f3', 'f4']);
    expect(ids(ring.last(Infinity))).toEqual(['f2', 'f3', 'f4']);
    expect(ids(ring.first(2))).toEqual(['f2', 'f3']);
    expect(ring.last(0)).toEqual([]);
  });

  it('last(n, filter) counts only matching flows', () => {
    const ring = new FlowRing({ capacity: 10 });
    for (const f of flows(8)) ring.push(f);
    const even = (f: Flow): boolean => Number(f.uuid.slice(1)) % 2 === 0;
    expect(ids(ring.last(2, even))).toEqual(['f4', 'f6']);
    expect(ids(ring.first(2, even))).toEqual(['f0', 'f2']);
  });

  it('rejects a bad capacity', () => {
    expect(() => new FlowRing({ capacity: 0 })).toThrow(RangeError);
    expect(() => new FlowRing({ capacity: 1.5 })).toThrow(RangeError);
  });

  it('subscribers see new flows (filtered) until they unsubscribe; a throwing one does not stop others', () => {
    const onListenerError = vi.fn();
    const ring = new FlowRing({ capacity: 2, onListenerError });
    const seen: string[] = [];
    const seenOdd: string[] = [];
    const unsubscribe = ring.subscribe((f) => seen.push(f.uuid));
    ring.subscribe(() => {
      throw new Error('boom');
    });
    ring.subscribe((f) => seenOdd.push(f.uuid), (f) => Number(f.uuid.slice(1)) % 2 === 1);
    const [a, b, c] = flows(3) as [Flow, Flow, Flow];
    ring.push(a);
    ring.push(b);
    unsubscribe();
    ring.push(c);
    expect(seen).toEqual(['f0', 'f1']);
    expect(seenOdd).toEqual(['f1']);
    expect(onListenerError).toHaveBeenCalledTimes(3);
    expect(ring.subscribers).toBe(2);
  });

  it('a listener may unsubscribe another during delivery', () => {
    const ring = new FlowRing({ capacity: 2 });
    const got: string[] = [];
    let offB = (): void => undefined;
    ring.subscribe(() => offB());
    offB = ring.subscribe((f) => got.push(f.uuid));
    ring.push(flows(1)[0] as Flow);
    expect(got).toEqual([]);
  });

  it('clear empties the ring but keeps the seen count', () => {
    const ring = new FlowRing({ capacity: 2 });
    for (const f of flows(3)) ring.push(f);
    ring.clear();
    expect(ring.size).toBe(0);
    expect(ring.last(5)).toEqual([]);
    expect(ring.seen).toBe(3);
  });
});

describe('issue-9 worker batch cost: FlowRing.pushJsonArray', () => {
  const json = (fs: Flow[]): [string, number] => [JSON.stringify(fs), fs.length];

  it('flows pushed as a JSON batch read back equal to the flows, in order with pushed objects, bounded by capacity', () => {
    const all = flows(9);
    const ring = new FlowRing({ capacity: 6 });
    ring.push(all[0]!);
    ring.pushJsonArray(...json(all.slice(1, 4)));
    ring.pushJsonArray(...json(all.slice(4, 8)));
    ring.push(all[8]!);
    expect([ring.size, ring.seen]).toEqual([6, 9]);
    expect(ring.first(2)).toEqual(all.slice(3, 5));
    expect(ring.last(Infinity)).toEqual(all.slice(3));
    // Read twice: the same flows (parsed once, kept).
    expect(ring.last(3)).toEqual(all.slice(6));
    const even = (f: Flow): boolean => Number(f.uuid.slice(1)) % 2 === 0;
    expect(ids(ring.last(2, even))).toEqual(['f6', 'f8']);
  });

  it('subscribers get each flow of a batch as an object, through their filter', () => {
    const ring = new FlowRing({ capacity: 10 });
    const seen: Flow[] = [];
    ring.subscribe((f) => seen.push(f), (f) => f.uuid !== 'f1');
    ring.pushJsonArray(...json(flows(3)));
    expect(seen).toEqual([flows(3)[0], flows(3)[2]]);
    expect(ring.seen).toBe(3);
  });

  it('a batch as UTF-8 bytes (as a proxy worker transfers it) reads back the same flows, non-ASCII text included', () => {
    const all = flows(4).map((f, i) => (i === 2 ? { ...f, uuid: 'f2-é€' } : f));
    const ring = new FlowRing({ capacity: 10 });
    ring.pushJsonArray(new TextEncoder().encode(JSON.stringify(all.slice(0, 3))), 3);
    const seen: Flow[] = [];
    ring.subscribe((f) => seen.push(f));
    ring.pushJsonArray(new TextEncoder().encode(JSON.stringify(all.slice(3))), 1);
    expect(ring.last(Infinity)).toEqual(all);
    expect(seen).toEqual(all.slice(3));
    ring.pushJsonArray(new Uint8Array(0), 0);
    expect(ring.seen).toBe(4);
  });

  it('an empty batch pushes nothing', () => {
    const ring = new FlowRing({ capacity: 2 });
    ring.pushJsonArray('', 0);
    ring.pushJsonArray('[]', 0);
    expect(ring.seen).toBe(0);
  });

  it('issue 11: onPush hooks see push() flows only; a batch with a hook and no subscriber stays unparsed', () => {
    const all = flows(5);
    const ring = new FlowRing({ capacity: 10 });
    const hooked: string[] = [];
    const off = ring.onPush((f) => hooked.push(f.uuid));
    const parse = vi.spyOn(JSON, 'parse');
    try {
      ring.push(all[0]!);
      ring.pushJsonArray(...json(all.slice(1, 4)));
      expect(parse).not.toHaveBeenCalled();
      // A subscriber makes batches parse at push; the hook still does not see them.
      const seen: string[] = [];
      ring.subscribe((f) => seen.push(f.uuid));
      ring.pushJsonArray(...json(all.slice(4, 5)));
      expect(seen).toEqual(['f4']);
    } finally {
      parse.mockRestore();
    }
    expect(hooked).toEqual(['f0']);
    off();
    ring.push({ ...all[0]!, uuid: 'f9' });
    expect(hooked).toEqual(['f0']);
    expect(ids(ring.last(Infinity))).toEqual(['f0', 'f1', 'f2', 'f3', 'f4', 'f9']);
  });
});
