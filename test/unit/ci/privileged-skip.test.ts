/**
 * Privileged tests never skip in CI (issue 7, item 5): any truthy `CI` (`true`, `1`, `yes`, a CI
 * system's name) makes a missing root a failure; only an unset, empty or false-like `CI` lets
 * them skip on a developer's machine.
 */
import { describe, expect, it } from 'vitest';
import { isCi, privilegedSkipReason } from '../../privileged/harness.js';

describe('privileged tests in CI (issue-7 any truthy CI counts)', () => {
  it.each(['true', 'TRUE', '1', 'yes', 'on', 'woodpecker', ' true '])('CI=%j without root is a failure, not a skip', (ci) => {
    expect(isCi(ci)).toBe(true);
    expect(() => privilegedSkipReason({ CI: ci }, false)).toThrow(/must run as root in CI/);
  });

  it.each([undefined, '', '  ', 'false', 'False', '0', 'no', 'off'])('CI=%j without root skips with the reason', (ci) => {
    expect(isCi(ci)).toBe(false);
    expect(privilegedSkipReason(ci === undefined ? {} : { CI: ci }, false)).toMatch(/^needs root/);
  });

  it('as root nothing skips, in CI or not', () => {
    expect(privilegedSkipReason({ CI: '1' }, true)).toBeNull();
    expect(privilegedSkipReason({}, true)).toBeNull();
  });
});
