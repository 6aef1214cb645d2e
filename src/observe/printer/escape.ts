/**
 * Terminal-safe text: strings in a flow come from packets (URLs, methods, DNS names), so a flow
 * printed to a terminal must not be able to move the cursor, recolour, or forge a second line.
 * ESC becomes `^[` and CR `\r` (Hubble's escaper); other C0 controls, DEL and C1 controls are
 * escaped too, since a raw LF would split one flow into two lines.
 */

const NAMED: Readonly<Record<string, string>> = {
  '\x1b': '^[',
  '\r': '\\r',
  '\n': '\\n',
  '\t': '\\t',
};

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;

export function escapeTerminal(s: string): string {
  return s.replace(CONTROL, (ch) => NAMED[ch] ?? `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
