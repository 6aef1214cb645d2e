/**
 * Linear-time regular expressions with RE2 semantics, for every pattern that runs against data a
 * pod sent (HTTP method, path and host rules; DNS names; flow filters).
 *
 * Matching uses the `re2` npm binding (Google RE2, the engine Envoy matches Cilium's HTTP rules
 * with): time linear in the input, no backtracking, no look-around or backreferences. Program
 * size comes from Google RE2 itself (./program-size.ts), so the limit is Envoy's to the unit.
 *
 * Sources: Envoy `source/common/common/regex.cc` (CompiledGoogleReMatcher: full match, program
 * size check, error text); `re2.max_program_size.error_level` defaults to 100.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { re2ProgramSize } from './program-size.js';

/**
 * The `re2` binding is a NAN addon: its build serves one Node.js ABI (NODE_MODULE_VERSION). For
 * the other supported Node.js lines, scripts/node-matrix.sh builds a copy of the package per ABI
 * in node_modules/.cache/membrane-re2/abi-N/re2; the one matching this process is taken when it
 * exists, else the installed package (as `require('re2')`; CommonJS, loaded the way Node does
 * for an ES module). Our own addons (native/) use N-API and load on every version.
 */
function loadRe2(): typeof import('re2') {
  const require = createRequire(import.meta.url);
  const installed = dirname(require.resolve('re2/package.json'));
  const perAbi = join(dirname(installed), '.cache', 'membrane-re2', `abi-${process.versions.modules}`, 're2');
  return require(existsSync(join(perAbi, 'build', 'Release', 're2.node')) ? perAbi : 're2') as typeof import('re2');
}
const RE2 = loadRe2();
type RE2 = InstanceType<typeof RE2>;

/** Envoy's default `re2.max_program_size.error_level`: a larger program is rejected. */
export const MAX_PROGRAM_SIZE = 100;

/** A compiled pattern. `test` is a full match for `compileFullMatch`, a search for `compileSearch`. */
export interface Re2Matcher {
  /** The pattern as the user wrote it. */
  readonly pattern: string;
  test(input: string): boolean;
}

export type Re2Result = { readonly ok: true; readonly matcher: Re2Matcher } | { readonly ok: false; readonly error: string };

export interface Re2Options {
  /**
   * Reject patterns whose RE2 program is larger than this, with Envoy's error text. Default: no
   * limit (DNS names and flow filters, which Envoy does not compile).
   */
  readonly maxProgramSize?: number;
}

function compile(pattern: string, source: string, opts: Re2Options): Re2Result {
  let re: RE2;
  try {
    re = new RE2(source);
  } catch (err) {
    return { ok: false, error: err instanceof Error ? err.message : String(err) };
  }
  if (opts.maxProgramSize !== undefined) {
    const p = re2ProgramSize(pattern);
    if ('error' in p) return { ok: false, error: p.error };
    if (p.size > opts.maxProgramSize) {
      return {
        ok: false,
        error: `regex '${pattern}' RE2 program size of ${p.size} > max program size of ${opts.maxProgramSize} set for the error level threshold. Increase configured max program size if necessary.`,
      };
    }
  }
  return { ok: true, matcher: { pattern, test: (input: string) => re.test(input) } };
}

/**
 * Compiles `pattern` to match the WHOLE input, as Envoy's `safe_regex` matchers do ("The regex is
 * matched against the full string, not as a partial match").
 */
export function compileFullMatch(pattern: string, opts: Re2Options = {}): Re2Result {
  return compile(pattern, `^(?:${pattern})$`, opts);
}

/** Compiles `pattern` to match anywhere in the input (Go's `regexp.MatchString`, as Hubble's filters). */
export function compileSearch(pattern: string, opts: Re2Options = {}): Re2Result {
  return compile(pattern, pattern, opts);
}

const cache = new LRUCache<string, Re2Matcher | false>({ max: 4096 });

/**
 * Cached full-match matcher for the request path; `null` if the pattern does not compile (a
 * validated policy never gets here with one, and an invalid pattern matches nothing).
 */
export function fullMatcher(pattern: string): Re2Matcher | null {
  const hit = cache.get(pattern);
  if (hit !== undefined) return hit === false ? null : hit;
  const r = compileFullMatch(pattern);
  cache.set(pattern, r.ok ? r.matcher : false);
  return r.ok ? r.matcher : null;
}
