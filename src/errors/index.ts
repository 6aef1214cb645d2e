/**
 * The one registry of Membrane error codes.
 *
 * A code is permanent: once released it is never renamed or reused, though its message may change.
 * Callers match on `err.code`, never on `instanceof`, so an error that crossed a process boundary
 * (the agent API, a child process) is still recognised.
 */

export const ERROR_CODES = {
  MEMBRANE_ERR_POLICY_INVALID: 'invalid policy',
  MEMBRANE_ERR_POLICY_NOT_FOUND: 'policy not found',
  MEMBRANE_ERR_POLICY_IO: 'cannot read or write a policy file',
  MEMBRANE_ERR_DATAPATH_LOAD: 'cannot load the BPF object',
  MEMBRANE_ERR_DATAPATH_ATTACH: 'cannot attach a BPF program',
  MEMBRANE_ERR_DATAPATH_MAP: 'BPF map operation failed',
  MEMBRANE_ERR_DATAPATH_CODEC: 'value does not fit the map layout',
  MEMBRANE_ERR_DATAPATH_NATIVE: 'the native addon is not built',
  MEMBRANE_ERR_ENDPOINT_NOT_FOUND: 'endpoint not found',
  MEMBRANE_ERR_ENDPOINT_INVALID: 'invalid endpoint',
  MEMBRANE_ERR_IDENTITY_EXHAUSTED: 'no free identity',
  MEMBRANE_ERR_AGENT_UNREACHABLE: 'cannot reach the agent',
  MEMBRANE_ERR_AGENT_API: 'the agent rejected the request',
  MEMBRANE_ERR_LAB_SPEC: 'invalid lab spec',
  MEMBRANE_ERR_LAB_COMMAND: 'a lab command failed',
  MEMBRANE_ERR_PROXY_UPSTREAM: 'the upstream connection failed',
  MEMBRANE_ERR_PROXY_REQUEST: 'malformed request',
  MEMBRANE_ERR_PROXY_LISTEN: 'the proxy cannot listen',
  MEMBRANE_ERR_PROXY_RESPONSE: 'the upstream response cannot be relayed',
  MEMBRANE_ERR_OBSERVE_FILTER: 'invalid flow filter',
  MEMBRANE_ERR_OBSERVE_OUTPUT: 'cannot write flow output',
  MEMBRANE_ERR_CLI_USAGE: 'invalid command line',
  MEMBRANE_ERR_STATE: 'cannot read or write the state directory',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface MembraneError extends Error {
  readonly code: ErrorCode;
  readonly details?: Record<string, unknown>;
}

/** Builds an Error whose message starts with the registry text and carries the context it needs. */
export function membraneError(
  code: ErrorCode,
  detail?: string,
  options?: { cause?: unknown; details?: Record<string, unknown> },
): MembraneError {
  const message = detail ? `${ERROR_CODES[code]}: ${detail}` : ERROR_CODES[code];
  const err = new Error(message, options?.cause === undefined ? undefined : { cause: options.cause }) as Error & {
    code: ErrorCode;
    details?: Record<string, unknown>;
  };
  err.name = 'MembraneError';
  err.code = code;
  if (options?.details) err.details = options.details;
  return err as MembraneError;
}

export function isMembraneError(value: unknown, code?: ErrorCode): value is MembraneError {
  if (typeof value !== 'object' || value === null) return false;
  const c = (value as { code?: unknown }).code;
  return typeof c === 'string' && c in ERROR_CODES && (code === undefined || c === code);
}
