/** Files named on the command line: read whole, or a coded error that names the path. */
import { readFileSync } from 'node:fs';
import { membraneError, type ErrorCode } from '../errors/index.js';

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory, not a file',
  EACCES: 'permission denied',
  ENOTDIR: 'a parent of the path is not a directory',
};

/**
 * The text of `file` (UTF-8). Errors: `code` with the message `FILE: <reason>` (the errno name in
 * `details.errno`), so a missing file is the user's input problem, never MEMBRANE_ERR_UNEXPECTED.
 */
export function readInputFile(file: string, code: ErrorCode): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code ?? '';
    throw membraneError(code, `${file}: ${REASONS[errno] ?? (err as Error).message}`, { cause: err, details: { errno } });
  }
}
