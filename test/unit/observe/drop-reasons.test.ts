/**
 * What `membrane observe` names a drop by: observe re-exports the one code table (src/codes), so
 * its `--drop-reason-desc` filter and its printers cannot drift from the datapath's numbers.
 */
import { describe, expect, it } from 'vitest';
import * as codes from '../../../src/codes/index.js';
import {
  DROP_REASON,
  dropReasonCode,
  dropReasonMessage,
  dropReasonName,
  dropReasons,
  EVENT_TYPE,
  isDropReasonName,
  VERDICTS,
} from '../../../src/observe/index.js';

describe('drop reasons as observe shows them', () => {
  it('issue-7 one table of codes: observe shows the shared table, not a copy', () => {
    expect(DROP_REASON).toBe(codes.DROP_REASON);
    expect(dropReasons()).toBe(codes.dropReasons());
    expect(EVENT_TYPE).toBe(codes.EVENT_TYPE);
    expect(VERDICTS).toBe(codes.VERDICTS);
  });

  it.each([
    [132, 'INVALID_SOURCE_IP', 'Invalid source ip'],
    [133, 'POLICY_DENIED', 'Policy denied'],
    [134, 'INVALID_PACKET_DROPPED', 'Invalid packet'],
    [135, 'CT_TRUNCATED_OR_INVALID_HEADER', 'CT: Truncated or invalid header'],
    [137, 'CT_UNKNOWN_L4_PROTOCOL', 'CT: Unknown L4 protocol'],
    [139, 'UNSUPPORTED_L3_PROTOCOL', 'Unsupported L3 protocol'],
    [150, 'UNKNOWN_L3_TARGET_ADDRESS', 'Unknown L3 target address'],
    [157, 'IP_FRAGMENTATION_NOT_SUPPORTED', 'IP fragmentation not supported'],
    [176, 'FORBIDDEN_ICMPV6_MESSAGE', 'Forbidden ICMPv6 message'],
    [178, 'SOCKET_LOOKUP_FAILED', 'Socket lookup failed'],
    [179, 'SOCKET_ASSIGN_FAILED', 'Socket assign failed'],
    [180, 'PROXY_REDIRECTION_NOT_SUPPORTED_FOR_PROTOCOL', 'Proxy redirection not supported for protocol'],
    [181, 'POLICY_DENY', 'Policy denied by denylist'],
    [189, 'AUTH_REQUIRED', 'Authentication required'],
  ])('%i ↔ %s ("%s")', (code, name, message) => {
    expect(dropReasonName(code)).toBe(name);
    expect(dropReasonCode(name)).toBe(code);
    expect(dropReasonMessage(code)).toBe(message);
    expect(isDropReasonName(name)).toBe(true);
  });

  it('unknown codes and names', () => {
    expect(dropReasonName(999)).toBeUndefined();
    expect(dropReasonCode('policy_denied')).toBeUndefined();
    expect(isDropReasonName('PROXY_LOOKUP_FAILED')).toBe(false);
    expect(dropReasonMessage(999)).toBe('999');
  });
});
