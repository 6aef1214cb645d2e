/**
 * A failed map operation names the map, not a file descriptor (issue 7, item 4): the error a
 * user reads says `membrane_ipcache`, carries MEMBRANE_ERR_DATAPATH_MAP and the errno by name.
 * Real maps, pinned by loading the real object into a pin root of this file's own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Datapath, removePins } from '../../src/datapath/index.js';
import { native } from '../../src/datapath/native.js';
import { privilegedSkipReason } from '../privileged/harness.js';

const skip = privilegedSkipReason();
const PIN_ROOT = '/sys/fs/bpf/mbt-map-errors';
const BPF_NOEXIST = 1;

function thrown(fn: () => unknown): { code?: string; message: string; details?: Record<string, unknown> } {
  try {
    fn();
  } catch (err) {
    return err as { code?: string; message: string; details?: Record<string, unknown> };
  }
  throw new Error('expected an error');
}

describe.skipIf(skip !== null)('map errors name the map (issue-7)' + (skip ? ` (skipped: ${skip})` : ''), () => {
  let dp: Datapath;
  const fds: number[] = [];

  beforeAll(() => {
    removePins(PIN_ROOT);
    dp = Datapath.open({ pinRoot: PIN_ROOT });
  });
  afterAll(() => {
    for (const fd of fds) native().closeFd(fd);
    dp?.close();
    removePins(PIN_ROOT);
  });

  function open(name: string): number {
    const fd = native().objGet(`${PIN_ROOT}/${name}`);
    fds.push(fd);
    return fd;
  }

  it('issue-7 an update that the kernel refuses names the map and the errno', () => {
    const fd = open('membrane_ipcache');
    // 10.9.9.9/32: lpm_key = prefix length, then the address.
    const key = Uint8Array.from([32, 0, 0, 0, 10, 9, 9, 9]);
    native().mapUpdate(fd, key, new Uint8Array(8), BPF_NOEXIST);
    const err = thrown(() => native().mapUpdate(fd, key, new Uint8Array(8), BPF_NOEXIST));
    expect(err.code).toBe('MEMBRANE_ERR_DATAPATH_MAP');
    expect(err.message).toBe('BPF map operation failed: bpf_map_update_elem map membrane_ipcache: File exists (EEXIST)');
    expect(err.details).toEqual({ map: 'membrane_ipcache', syscall: 'bpf_map_update_elem', errno: 'EEXIST' });
    expect(err.message).not.toMatch(/\bfd \d+/);
  });

  it('a lookup a map type does not support names that map', () => {
    const err = thrown(() => native().mapLookup(open('membrane_events'), new Uint8Array(4), 4));
    expect(err.code).toBe('MEMBRANE_ERR_DATAPATH_MAP');
    expect(err.details).toMatchObject({ map: 'membrane_events', syscall: 'bpf_map_lookup_elem' });
  });

  it('a pin that is not there names the pin', () => {
    const err = thrown(() => native().objGet(`${PIN_ROOT}/membrane_nothing`));
    expect(err.code).toBe('MEMBRANE_ERR_DATAPATH_MAP');
    expect(err.message).toContain(`${PIN_ROOT}/membrane_nothing`);
    expect(err.details).toMatchObject({ map: 'membrane_nothing', errno: 'ENOENT' });
  });

  it('an argument of the wrong type is a TypeError (a bug in our code), not a map error', () => {
    const err = thrown(() => (native().mapUpdate as (...a: unknown[]) => void)('x', new Uint8Array(8), new Uint8Array(8), 0));
    expect(err).toBeInstanceOf(TypeError);
  });
});
