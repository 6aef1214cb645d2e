/**
 * Hubble's `--color` (`hubble/pkg/printer/color.go`, fatih/color): hosts cyan, identities magenta,
 * FORWARDED/REDIRECTED (ALLOWED) green, DROPPED/ERROR (DENIED) red, AUDIT, TRACED and TRANSLATED
 * yellow. `auto` colours only a terminal with TERM other than `dumb` and NO_COLOR unset, as fatih/color
 * decides. Sequences are added after escaping, so packet data can never inject its own.
 */

export const COLOR_MODES = ['auto', 'always', 'never'] as const;
export type ColorMode = (typeof COLOR_MODES)[number];

const RESET = '\x1b[0m';
const wrap = (code: number) => (s: string): string => `\x1b[${code}m${s}${RESET}`;

export interface Colorer {
  host(s: string): string;
  identity(s: string): string;
  verdict(s: string): string;
}

const PLAIN: Colorer = { host: (s) => s, identity: (s) => s, verdict: (s) => s };

const green = wrap(32);
const red = wrap(31);
const yellow = wrap(33);

const COLORED: Colorer = {
  host: wrap(36),
  identity: wrap(35),
  verdict: (s) => {
    switch (s) {
      case 'FORWARDED':
      case 'REDIRECTED':
      case 'ALLOWED':
        return green(s);
      case 'DROPPED':
      case 'ERROR':
      case 'DENIED':
        return red(s);
      case 'AUDIT':
      case 'AUDITED':
      case 'TRACED':
      case 'TRANSLATED':
        return yellow(s);
      default:
        return s;
    }
  },
};

/** fatih/color's NoColor: NO_COLOR set (non-empty), TERM=dumb, or not a terminal. */
export function autoColor(isTTY: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  return isTTY && env.TERM !== 'dumb' && !env.NO_COLOR;
}

export function colorer(on: boolean): Colorer {
  return on ? COLORED : PLAIN;
}
