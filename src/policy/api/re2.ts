/**
 * RE2 (Go `regexp`) syntax → JavaScript RegExp, for HTTP method/path/host rules.
 *
 * Cilium compiles `path` and `method` with Go's regexp and Envoy matches them (and `host`) with RE2
 * against the FULL string. We translate the RE2 syntax we can express exactly, reject what RE2
 * rejects (backreferences, look-around, bad repeats), and anchor the result: `^(?:re)$`.
 */

export type Re2Result = { readonly ok: true; readonly source: string; readonly flags: string } | { readonly ok: false; readonly error: string };

/** RE2 refuses repeat counts above this. */
const MAX_REPEAT = 1000;

const POSIX_CLASSES: Readonly<Record<string, string>> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

const JS_SYNTAX = new Set(['^', '$', '\\', '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '/']);

function hexEscape(ch: string): string {
  return `\\u{${ch.codePointAt(0)!.toString(16)}}`;
}

function literal(ch: string): string {
  if (JS_SYNTAX.has(ch)) return `\\${ch}`;
  if (ch === '-') return hexEscape(ch);
  return ch;
}

const GENERAL_CATEGORIES = new Set([
  'L', 'Lu', 'Ll', 'Lt', 'Lm', 'Lo', 'M', 'Mn', 'Mc', 'Me', 'N', 'Nd', 'Nl', 'No', 'P', 'Pc', 'Pd', 'Ps', 'Pe', 'Pi', 'Pf', 'Po',
  'S', 'Sm', 'Sc', 'Sk', 'So', 'Z', 'Zs', 'Zl', 'Zp', 'C', 'Cc', 'Cf', 'Cs', 'Co', 'Cn',
]);

/** Translates an RE2 pattern. The result is not anchored; use `compileFullMatch`. */
export function translateRe2(re: string): Re2Result {
  let out = '';
  let flags = '';
  let i = 0;
  let inClass = false;
  let classStart = 0;
  let depth = 0;
  const fail = (error: string): Re2Result => ({ ok: false, error });

  // Leading flag group, e.g. (?i) or (?is): applied to the whole expression.
  const lead = /^\(\?([imsU]+)\)/.exec(re);
  if (lead) {
    for (const f of lead[1]!) {
      if (f === 'U') return fail('the (?U) flag is not supported by Membrane');
      if (f === 'm') flags += 'm';
      if (f === 'i') flags += 'i';
      if (f === 's') flags += 's';
    }
    i = lead[0].length;
  }

  while (i < re.length) {
    const ch = re[i]!;
    if (ch === '\\') {
      const n = re[i + 1];
      if (n === undefined) return fail('trailing backslash at end of expression');
      if (n === 'Q') {
        const end = re.indexOf('\\E', i + 2);
        const text = end < 0 ? re.slice(i + 2) : re.slice(i + 2, end);
        for (const c of text) out += inClass ? (c === ']' || c === '\\' || c === '-' || c === '^' ? hexEscape(c) : c) : literal(c);
        i = end < 0 ? re.length : end + 2;
        continue;
      }
      if (n === 'A' && !inClass) {
        out += '^';
        i += 2;
        continue;
      }
      if (n === 'z' && !inClass) {
        out += '$';
        i += 2;
        continue;
      }
      if (n === 'C' || n === 'Z') return fail(`invalid escape sequence: \`\\${n}\``);
      if (n === 'x') {
        if (re[i + 2] === '{') {
          const end = re.indexOf('}', i + 3);
          const hex = end < 0 ? '' : re.slice(i + 3, end);
          if (!/^[0-9A-Fa-f]{1,6}$/.test(hex) || parseInt(hex, 16) > 0x10ffff) return fail(`invalid escape sequence: \`\\x{${hex}\``);
          out += `\\u{${hex}}`;
          i = end + 1;
          continue;
        }
        const hex = re.slice(i + 2, i + 4);
        if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return fail(`invalid escape sequence: \`\\x${hex}\``);
        out += `\\x${hex}`;
        i += 4;
        continue;
      }
      if (n === 'p' || n === 'P') {
        let name: string;
        let len: number;
        if (re[i + 2] === '{') {
          const end = re.indexOf('}', i + 3);
          if (end < 0) return fail('invalid character class range: missing }');
          name = re.slice(i + 3, end);
          len = end + 1 - i;
        } else {
          name = re[i + 2] ?? '';
          len = 3;
        }
        let neg = n === 'P';
        if (name.startsWith('^')) {
          neg = !neg;
          name = name.slice(1);
        }
        if (!/^[A-Za-z_]+$/.test(name)) return fail(`invalid character class range: \`\\${n}{${name}}\``);
        const body = name === 'Any' ? 'Any' : GENERAL_CATEGORIES.has(name) ? name : `Script=${name}`;
        out += `\\${neg ? 'P' : 'p'}{${body}}`;
        i += len;
        continue;
      }
      if (n >= '1' && n <= '9') {
        const oct = /^[1-7][0-7]{1,2}/.exec(re.slice(i + 1));
        if (!oct) return fail(`invalid escape sequence: \`\\${n}\` (backreferences are not supported)`);
        out += hexEscape(String.fromCodePoint(parseInt(oct[0], 8)));
        i += 1 + oct[0].length;
        continue;
      }
      if (n === '0') {
        const oct = /^0[0-7]{0,2}/.exec(re.slice(i + 1))!;
        out += hexEscape(String.fromCodePoint(parseInt(oct[0], 8)));
        i += 1 + oct[0].length;
        continue;
      }
      if ('dDwWsS'.includes(n)) {
        out += `\\${n}`;
        i += 2;
        continue;
      }
      if (n === 'b' || n === 'B') {
        if (inClass) return fail(`invalid escape sequence: \`\\${n}\``);
        out += `\\${n}`;
        i += 2;
        continue;
      }
      if ('afnrtv'.includes(n)) {
        out += n === 'a' ? '\\x07' : `\\${n}`;
        i += 2;
        continue;
      }
      if (/[A-Za-z0-9]/.test(n)) return fail(`invalid escape sequence: \`\\${n}\``);
      // Escaped punctuation is a literal.
      out += inClass ? (n === '-' || n === ']' || n === '\\' || n === '^' || n === '[' ? `\\${n}` : hexEscape(n)) : literal(n);
      i += 2;
      continue;
    }
    if (inClass) {
      if (ch === '[' && re[i + 1] === ':') {
        const end = re.indexOf(':]', i + 2);
        if (end >= 0) {
          let name = re.slice(i + 2, end);
          let neg = false;
          if (name.startsWith('^')) {
            neg = true;
            name = name.slice(1);
          }
          const cls = POSIX_CLASSES[name];
          if (cls === undefined) return fail(`invalid character class range: \`[:${name}:]\``);
          if (neg) return fail('negated POSIX classes are not supported by Membrane');
          out += cls;
          i = end + 2;
          continue;
        }
      }
      if (ch === ']' && i > classStart) {
        inClass = false;
        out += ']';
        i++;
        continue;
      }
      if (ch === '[') {
        out += '\\[';
        i++;
        continue;
      }
      out += ch === ']' ? '\\]' : ch;
      i++;
      continue;
    }
    if (ch === '[') {
      inClass = true;
      out += '[';
      i++;
      if (re[i] === '^') {
        out += '^';
        i++;
      }
      classStart = i; // a ']' right here is a literal
      if (re[i] === ']') {
        out += '\\]';
        i++;
      }
      continue;
    }
    if (ch === '(') {
      if (re[i + 1] === '?') {
        const rest = re.slice(i + 2);
        if (rest.startsWith('P<') || rest.startsWith('<')) {
          const m = /^P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
          if (!m) return fail('invalid named capture');
          out += `(?<${m[1]}>`;
          i += 2 + m[0].length;
          depth++;
          continue;
        }
        if (rest.startsWith(':')) {
          out += '(?:';
          i += 3;
          depth++;
          continue;
        }
        if (/^[=!]|^<[=!]/.test(rest)) return fail(`invalid or unsupported Perl syntax: \`(?${rest.slice(0, rest[0] === '<' ? 2 : 1)}\``);
        return fail(`flag groups other than a leading (?i), (?s) or (?m) are not supported by Membrane: \`(?${rest.slice(0, 3)}\``);
      }
      out += '(';
      depth++;
      i++;
      continue;
    }
    if (ch === ')') {
      if (depth === 0) return fail('unexpected ): unbalanced parentheses');
      depth--;
      out += ')';
      i++;
      continue;
    }
    if (ch === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(re.slice(i));
      if (!m) {
        out += '\\{';
        i++;
        continue;
      }
      const lo = Number(m[1]);
      const hi = m[3] === undefined || m[3] === '' ? lo : Number(m[3]);
      if (lo > MAX_REPEAT || hi > MAX_REPEAT || (m[3] !== undefined && m[3] !== '' && hi < lo)) return fail(`invalid repeat count: \`${m[0]}\``);
      out += m[0];
      i += m[0].length;
      continue;
    }
    if (ch === '}' || ch === ']') {
      out += `\\${ch}`;
      i++;
      continue;
    }
    out += ch;
    i++;
  }
  if (inClass) return fail('missing closing ]');
  if (depth !== 0) return fail('missing closing ): unbalanced parentheses');
  return { ok: true, source: out, flags };
}

/** Compiles an RE2 pattern into a JS RegExp that must match the whole input. */
export function compileFullMatch(re: string): { ok: true; regex: RegExp } | { ok: false; error: string } {
  const t = translateRe2(re);
  if (!t.ok) return t;
  try {
    return { ok: true, regex: new RegExp(`^(?:${t.source})$`, `u${t.flags}`) };
  } catch (e) {
    const msg = e instanceof Error ? e.message.replace(/^Invalid regular expression: /, '') : String(e);
    return { ok: false, error: msg };
  }
}

const cache = new Map<string, RegExp | null>();
const CACHE_MAX = 1024;

/** Cached full-match compile; null if the pattern is invalid. */
export function fullMatchRegex(re: string): RegExp | null {
  const hit = cache.get(re);
  if (hit !== undefined) return hit;
  const r = compileFullMatch(re);
  const v = r.ok ? r.regex : null;
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(re, v);
  return v;
}
