/**
 * issue-9 endpoint churn without synchronous state writes: endpoint changes are written to the
 * state directory off the event loop, many changes in one write, and an acknowledged change is on
 * disk (a restarted agent restores it); a synchronous write that comes later is never overwritten
 * by an older one still in flight.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { EndpointManager, type EndpointSpec } from '../../../src/agent/endpoints.js';
import { JsonText, StateStore } from '../../../src/agent/state-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'membrane-state-'));
  dirs.push(d);
  return d;
}

const spec = (i: number): EndpointSpec => ({ name: `pod-${i}`, namespace: 'default', podLabels: { app: `a${i % 3}` }, ip: `10.9.${i >> 8}.${(i & 255) + 1}`, ifname: `veth${i}` });
const saved = (d: string): { endpoints: { name: string; id: number }[] } => JSON.parse(readFileSync(join(d, 'endpoints.json'), 'utf8'));

describe('issue-9 asynchronous endpoint state', () => {
  it('many changes in one turn are one write, holding all of them once persisted() resolves; a new manager restores them', async () => {
    const d = dir();
    const m = new EndpointManager(new StateStore(d));
    for (let i = 0; i < 50; i++) m.upsert(spec(i));
    m.remove('default', 'pod-7');
    await m.persisted();
    const names = saved(d).endpoints.map((e) => e.name);
    expect(names).toHaveLength(49);
    expect(names).not.toContain('pod-7');
    // No temporary file left behind.
    expect(readdirSync(d)).toEqual(['endpoints.json']);
    const again = new EndpointManager(new StateStore(d));
    expect(again.restore().map((e) => e.name)).toEqual(names);
    // Ids, indexes and the freed id: pod-7's id is given to the next endpoint.
    expect(again.byIp(spec(3).ip)?.name).toBe('pod-3');
    expect(again.byId(again.get('default', 'pod-3')!.id)?.name).toBe('pod-3');
    const id7 = m.get('default', 'pod-6')!.id + 1;
    expect(again.upsert(spec(100)).id).toBe(id7);
  });

  it('a change made while a write is in flight is written after it: the file ends with the latest state', async () => {
    const d = dir();
    const m = new EndpointManager(new StateStore(d));
    m.upsert(spec(1));
    const first = m.persisted();
    await new Promise((r) => setImmediate(r)); // the first write has started
    m.upsert(spec(2));
    const second = m.persisted();
    expect(second).not.toBe(first);
    await first;
    await second;
    expect(saved(d).endpoints.map((e) => e.name)).toEqual(['pod-1', 'pod-2']);
  });

  it('an address already taken is refused and nothing is written for it', async () => {
    const d = dir();
    const m = new EndpointManager(new StateStore(d));
    m.upsert(spec(1));
    expect(() => m.upsert({ ...spec(2), ip: spec(1).ip })).toThrow(/already belongs to default\/pod-1/);
    await m.persisted();
    expect(saved(d).endpoints.map((e) => e.name)).toEqual(['pod-1']);
  });

  it('a synchronous write after an asynchronous one began wins (agent stop), and settled() waits for both', async () => {
    const d = dir();
    const s = new StateStore(d);
    void s.writeSoon('doc.json', () => ({ v: 'old' }));
    await new Promise((r) => setImmediate(r));
    s.write('doc.json', { v: 'new' });
    await s.settled();
    expect(JSON.parse(readFileSync(join(d, 'doc.json'), 'utf8'))).toEqual({ v: 'new' });
    expect(readdirSync(d)).toEqual(['doc.json']);
  });

  it('a write that fails rejects with MEMBRANE_ERR_STATE and keeps the previous version', async () => {
    const d = dir();
    const s = new StateStore(d);
    s.write('doc.json', { v: 1 });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(s.writeSoon('doc.json', () => cyclic)).rejects.toMatchObject({ code: 'MEMBRANE_ERR_STATE' });
    expect(JSON.parse(readFileSync(join(d, 'doc.json'), 'utf8'))).toEqual({ v: 1 });
  });
});

describe('issue-9 a document produced in slices', () => {
  /** A producer that gives `text` once `open()` is called. */
  function gated(text: string): { produce: () => Promise<JsonText>; open: () => void } {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const produce = async (): Promise<JsonText> => {
      await gate;
      return new JsonText(text);
    };
    return { produce, open: () => open() };
  }

  it('an asynchronous producer is awaited and its JsonText written as it is; a synchronous write meanwhile still wins', async () => {
    const d = dir();
    const store = new StateStore(d);
    const first = gated('{"from":"async"}');
    const done = store.writeSoon('doc.json', first.produce);
    await new Promise((r) => setImmediate(r));
    first.open();
    await done;
    expect(readFileSync(join(d, 'doc.json'), 'utf8')).toBe('{"from":"async"}\n');

    const stale = gated('{"from":"stale"}');
    const late = store.writeSoon('doc.json', stale.produce);
    await new Promise((r) => setImmediate(r));
    store.write('doc.json', { from: 'sync' });
    stale.open();
    await late;
    await store.settled();
    expect(JSON.parse(readFileSync(join(d, 'doc.json'), 'utf8'))).toEqual({ from: 'sync' });
    expect(readdirSync(d)).toEqual(['doc.json']);
  });

  it('a producer that rejects fails the write with MEMBRANE_ERR_STATE and keeps the previous version', async () => {
    const d = dir();
    const store = new StateStore(d);
    store.write('doc.json', { v: 1 });
    await expect(store.writeSoon('doc.json', () => Promise.reject(new Error('boom')))).rejects.toMatchObject({ code: 'MEMBRANE_ERR_STATE' });
    expect(JSON.parse(readFileSync(join(d, 'doc.json'), 'utf8'))).toEqual({ v: 1 });
  });
});
