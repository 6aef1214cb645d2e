/** JSON documents in the agent's state directory, written atomically (write temp, rename). */
import { mkdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { membraneError } from '../errors/index.js';

export class StateStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  read<T>(name: string, fallback: T): T {
    const path = join(this.dir, name);
    if (!existsSync(path)) return fallback;
    try {
      return JSON.parse(readFileSync(path, 'utf8')) as T;
    } catch (err) {
      throw membraneError('MEMBRANE_ERR_STATE', `${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  write(name: string, value: unknown): void {
    const path = join(this.dir, name);
    const tmp = `${path}.tmp-${process.pid}`;
    try {
      writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
      renameSync(tmp, path);
    } catch (err) {
      throw membraneError('MEMBRANE_ERR_STATE', `${path}: ${(err as Error).message}`, { cause: err });
    }
  }
}
