/**
 * issue-8 identities survive a restart, and a learned address costs one line of state: a CIDR or
 * FQDN identity is saved as its prefix plus its other labels and re-derived on load, to the
 * same label set and the same id.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
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
