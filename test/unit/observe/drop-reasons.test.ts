import { describe, expect, it } from 'vitest';
import {
  DROP_REASON,
  dropReasonCode,
  dropReasonMessage,
  dropReasonName,
  dropReasons,
  isDropReasonName,
} from '../../../src/observe/index.js';

describe('drop reasons', () => {
  it.each([
    [132, 'INVALID_SOURCE_IP', 'Invalid source ip'],
    [133, 'POLICY_DENIED', 'Policy denied'],
    [134, 'INVALID_PACKET_DROPPED', 'Invalid packet'],
    [135, 'CT_TRUNCATED_OR_INVALID_HEADER', 'CT: Truncated or invalid header'],
    [137, 'CT_UNKNOWN_L4_PROTOCOL', 'CT: Unknown L4 protocol'],
    [139, 'UNSUPPORTED_L3_PROTOCOL', 'Unsupported L3 protocol'],
    [157, 'IP_FRAGMENTATION_NOT_SUPPORTED', 'IP fragmentation not supported'],
    [176, 'FORBIDDEN_ICMPV6_MESSAGE', 'Forbidden ICMPv6 message'],
    [180, 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL', 'Proxy redirection not supported for protocol'],
    [181, 'POLICY_DENY', 'Policy denied by denylist'],
  ])('%i ↔ %s ("%s")', (code, name, message) => {
    expect(dropReasonName(code)).toBe(name);
    expect(dropReasonCode(name)).toBe(code);
    expect(dropReasonMessage(code)).toBe(message);
    expect(isDropReasonName(name)).toBe(true);
  });

  it('unknown codes and names', () => {
    expect(dropReasonName(999)).toBeUndefined();
    expect(dropReasonCode('policy_denied')).toBeUndefined();
    expect(dropReasonMessage(999)).toBe('999');
    expect(dropReasonMessage(189)).toBe('189');
    expect(dropReasonName(189)).toBe('AUTH_REQUIRED');
  });

  it('the table is a bijection, ascending, and DROP_REASON agrees with it', () => {
    const rows = dropReasons();
    expect(new Set(rows.map((r) => r.code)).size).toBe(rows.length);
    expect(new Set(rows.map((r) => r.name)).size).toBe(rows.length);
    expect(rows.map((r) => r.code)).toEqual([...rows.map((r) => r.code)].sort((a, b) => a - b));
    for (const [name, code] of Object.entries(DROP_REASON)) expect(dropReasonCode(name)).toBe(code);
  });
});
