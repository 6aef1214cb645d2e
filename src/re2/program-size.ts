/**
 * Google RE2's program size for a pattern, from the membrane_re2 addon (native/re2/, linked with
 * Debian's libre2): the number Envoy compares with `max_program_size`. Loaded on first use so
 * that code which never validates a regex never needs the addon.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { membraneError } from '../errors/index.js';

interface Re2Addon {
  programSize(pattern: string): { size: number } | { error: string };
}

const ADDON_PATH = fileURLToPath(new URL('../../native/re2/build/Release/membrane_re2.node', import.meta.url));

let addon: Re2Addon | undefined;

/**
 * `{ size }` when RE2 compiles `pattern` as Envoy does (UTF-8, `RE2::Quiet`), else `{ error }` with
 * RE2's own message. Throws MEMBRANE_ERR_REGEX_NATIVE when the addon is not built.
 */
export function re2ProgramSize(pattern: string): { size: number } | { error: string } {
  if (!addon) {
    if (!existsSync(ADDON_PATH)) throw membraneError('MEMBRANE_ERR_REGEX_NATIVE', `${ADDON_PATH} is missing; run scripts/setup.sh`);
    addon = createRequire(import.meta.url)(ADDON_PATH) as Re2Addon;
  }
  return addon.programSize(pattern);
}
