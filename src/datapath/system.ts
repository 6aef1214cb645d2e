/** Small wrappers over the node's own tools (iproute2, mount, sysctl) with errors that carry context. */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { membraneError } from '../errors/index.js';

export function run(cmd: string, args: readonly string[], opts: { allowFail?: boolean } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (opts.allowFail) return '';
    const stderr = (err as { stderr?: string }).stderr?.trim() ?? '';
    throw membraneError('MEMBRANE_ERR_LAB_COMMAND', `${cmd} ${args.join(' ')}: ${stderr || String(err)}`, { cause: err });
  }
}

export function ipJson<T>(args: readonly string[]): T {
  const out = run('ip', ['-j', ...args]).trim();
  return (out ? JSON.parse(out) : []) as T;
}

export function readSysctl(path: string): string {
  return readFileSync(`/proc/sys/${path}`, 'utf8').trim();
}

export function writeSysctl(path: string, value: string): void {
  writeFileSync(`/proc/sys/${path}`, value);
}

/** Mounts bpffs at /sys/fs/bpf when nothing is mounted there (a fresh VM has none). */
export function ensureBpffs(pinRoot: string): void {
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n');
  const bpfMounts = mounts.filter((l) => l.split(' ')[2] === 'bpf').map((l) => l.split(' ')[1] ?? '');
  if (bpfMounts.some((m) => pinRoot === m || pinRoot.startsWith(`${m}/`))) return;
  if (!pinRoot.startsWith('/sys/fs/bpf/')) {
    throw membraneError('MEMBRANE_ERR_DATAPATH_LOAD', `pin root ${pinRoot} is not on a bpf filesystem`);
  }
  run('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf']);
}
