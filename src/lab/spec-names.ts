/**
 * Shared checks for lab specs: DNS names and addresses in the lab's 10.x range. Lab specs are
 * written by the user (not pod data); the patterns are still linear (no nested quantifiers).
 */

/** A lower-case DNS name of LDH labels (1–63 characters each, ≤ 253 in all), no trailing dot. */
export function isDnsName(name: unknown): name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(label));
}

/** The four octets of a dotted IPv4 address, or null. */
export function ipv4Octets(ip: unknown): [number, number, number, number] | null {
  if (typeof ip !== 'string') return null;
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return null;
  const octets = m.slice(1).map(Number) as [number, number, number, number];
  return octets.every((o) => o <= 255) && octets.every((o, i) => String(o) === m[i + 1]) ? octets : null;
}
