/**
 * The metrics map upgrade: an agent restarting on pins left by an agent from before the drop and
 * forward counters were keyed by direction (a 256-entry membrane_metrics) starts, with a new map of
 * the current size, instead of failing to load its object.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Datapath, removePins } from '../../src/datapath/index.js';
import { privilegedSkipReason } from '../privileged/harness.js';

const skip = privilegedSkipReason();
const PIN_ROOT = '/sys/fs/bpf/mbt-bpf-metrics-upgrade';

describe.skipIf(skip !== null)('membrane_metrics of an older layout' + (skip ? ` (skipped: ${skip})` : ''), () => {
  afterAll(() => removePins(PIN_ROOT));

  it('a pinned 256-entry metrics map is replaced: the datapath opens and reads its counters', () => {
    removePins(PIN_ROOT);
    mkdirSync(PIN_ROOT, { recursive: true });
    const old = spawnSync('bpftool', ['map', 'create', join(PIN_ROOT, 'membrane_metrics'), 'type', 'percpu_array', 'key', '4', 'value', '16', 'entries', '256', 'name', 'membrane_metrics'], { encoding: 'utf8' });
    expect(old.status, old.stderr).toBe(0);
    expect(existsSync(join(PIN_ROOT, 'membrane_metrics'))).toBe(true);

    const dp = Datapath.open({ pinRoot: PIN_ROOT });
    try {
      expect(dp.readCounters()).toEqual([]);
      const entries = dp.mapPressure();
      expect(entries.map((p) => p.mapName).sort()).toEqual(['membrane_ct4', 'membrane_endpoints', 'membrane_ipcache', 'membrane_policy']);
    } finally {
      dp.close();
    }
    const info = spawnSync('bpftool', ['-j', 'map', 'show', 'pinned', join(PIN_ROOT, 'membrane_metrics')], { encoding: 'utf8' });
    expect((JSON.parse(info.stdout) as { max_entries: number }).max_entries).toBe(768);
  });
});
