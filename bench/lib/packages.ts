/**
 * The Debian packages the selected benchmarks run, installed when missing — as scripts/setup.sh
 * installs its own: `dpkg-query` decides what is missing, one `apt-get install` takes them all,
 * waiting for the apt lock rather than failing. Idempotent: nothing is run when all are there.
 */
import { spawnSync } from 'node:child_process';

function installed(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/** Installs those of `pkgs` that are missing; throws with apt-get's output when that fails. */
export function ensurePackages(pkgs: readonly string[], log: (m: string) => void): void {
  const missing = [...new Set(pkgs)].filter((p) => !installed(p));
  if (!missing.length) return;
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [
    ['-o', 'DPkg::Lock::Timeout=300', 'update', '-qq'],
    ['-o', 'DPkg::Lock::Timeout=300', 'install', '-y', '-qq', '--no-install-recommends', ...missing],
  ]) {
    const r = spawnSync('apt-get', args, { encoding: 'utf8', env });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (${r.status}): ${(r.stderr || r.stdout).trim().slice(-2000)}`);
  }
}
