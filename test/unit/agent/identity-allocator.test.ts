/**
 * issue-8 identities survive a restart, and a learned address costs one line of state: a CIDR or
 * FQDN identity is saved as its prefix plus its other labels and re-derived on load, to the
 * same label set and the same id.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdentityAllocator, LOCAL_IDENTITY_SCOPE } from '../../../src/agent/identity-allocator.js';
import { StateStore } from '../../../src/agent/state-store.js';
import { fqdnIdentityLabels } from '../../../src/agent/regenerate.js';
import { cidrIdentityLabels, endpointLabels, formatLabel, parseLabel } from '../../../src/policy/index.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function store(): StateStore {
  const d = mkdtempSync(join(tmpdir(), 'membrane-ids-'));
  dirs.push(d);
  return new StateStore(d);
}

describe('issue-8 identity allocator', () => {
  it('restores cluster, CIDR and FQDN identities with their ids and exact labels', () => {
    const s = store();
    const a = new IdentityAllocator(s, parseLabel);
    const pod = endpointLabels({ namespace: 'default', podLabels: { class: 'mediabot' } });
    const fqdn = fqdnIdentityLabels('10.78.200.20', ['*.github.com.', 'api.github.com.']);
    const cidr = cidrIdentityLabels('10.0.0.0/8');
    const ids = [a.allocate(pod), a.allocate(fqdn, 'local'), a.allocate(cidr, 'local')];
    expect(ids[0]).toBeLessThan(LOCAL_IDENTITY_SCOPE);
    expect(ids[1]).toBeGreaterThan(LOCAL_IDENTITY_SCOPE);
    a.flush();

    const b = new IdentityAllocator(s, parseLabel);
    expect([b.allocate(pod), b.allocate(fqdn, 'local'), b.allocate(cidr, 'local')]).toEqual(ids);
    expect(b.labelsOf(ids[1]!)!.map(formatLabel).sort()).toEqual(fqdn.map(formatLabel).sort());

    const saved = JSON.parse(readFileSync(join(s.dir, 'identities.json'), 'utf8')) as { identities: Array<{ id: number; cidr?: string; labels: string[] }> };
    expect(saved.identities.find((i) => i.id === ids[1])).toEqual({ id: ids[1], cidr: '10.78.200.20/32', labels: ['fqdn:*.github.com.', 'fqdn:api.github.com.'] });
  });

  it('a released local identity is gone after a restart; the next allocation takes a new id', () => {
    const s = store();
    const a = new IdentityAllocator(s, parseLabel);
    const one = a.allocate(fqdnIdentityLabels('10.78.200.21', ['api.github.com.']), 'local');
    a.release(one);
    a.flush();
    const b = new IdentityAllocator(s, parseLabel);
    expect(b.labelsOf(one)).toBeUndefined();
  });
});

describe('issue-8 identity allocator saves', () => {
  it('a local identity is saved within 5 s without a flush (written off the event loop), and restored', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      const s = store();
      const a = new IdentityAllocator(s, parseLabel);
      const labels = fqdnIdentityLabels('10.78.200.30', ['api.github.com.']);
      const id = a.allocate(labels, 'local');
      expect(existsSync(join(s.dir, 'identities.json'))).toBe(false);
      vi.advanceTimersByTime(5000);
      await s.settled();
      const b = new IdentityAllocator(s, parseLabel);
      expect(b.labelsOf(id)!.map(formatLabel).sort()).toEqual(labels.map(formatLabel).sort());
    } finally {
      vi.useRealTimers();
    }
  });

  it('label sets that are not a prefix\'s derived labels plus others in that order are saved exactly', () => {
    const s = store();
    const a = new IdentityAllocator(s, parseLabel);
    const derived = cidrIdentityLabels('10.1.2.3/32');
    const sets = [
      [...derived].reverse().concat([{ source: 'fqdn', key: 'a.example.', value: '' }]),
      [...derived, { source: 'reserved', key: 'host', value: '' }],
      // A derived label missing: not the prefix's identity.
      derived.filter((l) => l.key !== '10.0.0.0/8'),
      [...cidrIdentityLabels('10.1.2.4/32'), { source: 'cidr', key: '192.168.0.0/16', value: '' }],
    ];
    const ids = sets.map((l) => a.allocate(l, 'local'));
    expect(new Set(ids).size).toBe(sets.length);
    a.flush();
    const b = new IdentityAllocator(s, parseLabel);
    sets.forEach((l, i) => expect(b.labelsOf(ids[i]!)!.map(formatLabel).sort()).toEqual(l.map(formatLabel).sort()));
    // Saved again from the same allocator (its lines are memoised): the same document.
    const first = readFileSync(join(s.dir, 'identities.json'), 'utf8');
    b.allocate(fqdnIdentityLabels('10.9.9.9', ['x.example.']), 'local');
    b.release(b.allocate(fqdnIdentityLabels('10.9.9.9', ['x.example.']), 'local'));
    b.flush();
    expect(readFileSync(join(s.dir, 'identities.json'), 'utf8')).toBe(first);
  });
});
