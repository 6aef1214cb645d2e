/**
 * Google RE2's program size for a pattern, from the membrane_re2 addon (native/re2/, linked with
 * Debian's libre2): the number Envoy compares with `max_program_size`. Loaded on first use so
 * that code which never validates a regex never needs the addon.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { membraneError } from '../errors/index.js';

interface Re2Addon {
  programSize(pattern: string): { size: number } | { error: string };
}

const ADDON = 'native/re2/build/Release/membrane_re2.node';

/** The addon under the checkout this module belongs to, whether it runs from dist/ or dist-bench/src/. */
function addonPath(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'native', 're2', 'binding.gyp'))) return join(dir, ADDON);
    if (dirname(dir) === dir) return fileURLToPath(new URL(`../../${ADDON}`, import.meta.url));
  }
}

let addon: Re2Addon | undefined;

/**
 * `{ size }` when RE2 compiles `pattern` as Envoy does (UTF-8, `RE2::Quiet`), else `{ error }` with
 * RE2's own message. Throws MEMBRANE_ERR_REGEX_NATIVE when the addon is not built.
 */
export function re2ProgramSize(pattern: string): { size: number } | { error: string } {
  if (!addon) {
    const path = addonPath();
    if (!existsSync(path)) throw membraneError('MEMBRANE_ERR_REGEX_NATIVE', `${path} is missing; run scripts/setup.sh`);
    addon = createRequire(import.meta.url)(path) as Re2Addon;
  }
  return addon.programSize(pattern);
}
