/**
 * Runs the built `membrane` CLI as a real child process (no shell) and hands back its exit
 * status and output. The tests here are black-box: they know the command-line contract of
 * `membrane policy validate|trace` (issue 3, "Tools"), not the code behind it.
 *
 * dist/ is built by `npx tsc -p tsconfig.json` (scripts/setup.sh does it before every test run).
 */
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = join(REPO, 'dist', 'cli', 'main.js');
export const FIXTURES = join(REPO, 'test', 'fixtures', 'cli');
export const STARWARS = join(REPO, 'deploy', 'lab', 'starwars');

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout split into lines, without the trailing empty one. */
  readonly lines: string[];
}

export function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build it first with \`npx tsc -p tsconfig.json\``);
}

export function membrane(args: readonly string[]): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 20_000,
    // No agent socket is involved: every call here is offline.
    env: { ...process.env, MEMBRANE_API_SOCKET: join(tmpdir(), 'membrane-cli-test-no-agent.sock'), NO_COLOR: '1' },
  });
  if (r.error) throw r.error;
  const stdout = r.stdout;
  return { status: r.status, stdout, stderr: r.stderr, lines: stdout.split('\n').filter((l, i, a) => !(l === '' && i === a.length - 1)) };
}

/** Parses stdout as JSON, with the raw output in the error when it is not JSON. */
export function json<T = unknown>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${String(r.status)}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}

const liveTempDirs: string[] = [];

/** A fresh temporary directory, removed by `removeTempDirs` (each test file calls it in afterEach). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `membrane-cli-${prefix}-`));
  liveTempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of liveTempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Escapes a literal for use inside a RegExp. */
export function re(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** What an asynchronous run of the CLI gave: its exit status (-1 if none) and output. */
export interface CliOutput {
  code: number;
  stdout: string;
  stderr: string;
}

const execFileAsync = promisify(execFile);

/**
 * Runs the built CLI without blocking the test's event loop (a server in this process must keep
 * answering it), with `env` added to this process's; at most 20 s.
 */
export async function membraneAsync(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliOutput> {
  try {
    const r = await execFileAsync(process.execPath, [CLI, ...args], { cwd: REPO, timeout: 20_000, env: { ...process.env, ...env } });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** Output split into its non-empty lines. */
export const outputLines = (s: string): string[] => s.split('\n').filter((l) => l !== '');
