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
  MEMBRANE_ERR_AGENT_API: 'the agent could not serve the request',
  MEMBRANE_ERR_API_REQUEST: 'malformed API request',
  MEMBRANE_ERR_API_ROUTE: 'no such API route',
  MEMBRANE_ERR_API_METHOD: 'method not allowed on this API route',
  MEMBRANE_ERR_API_TOO_LARGE: 'API request too large',
  MEMBRANE_ERR_API_MEDIA_TYPE: 'unsupported content type',
  MEMBRANE_ERR_API_TIMEOUT: 'API request not received in time',
  MEMBRANE_ERR_LAB_SPEC: 'invalid lab spec',
  MEMBRANE_ERR_LAB_COMMAND: 'a lab command failed',
  MEMBRANE_ERR_PROXY_UPSTREAM: 'the upstream connection failed',
  MEMBRANE_ERR_PROXY_REQUEST: 'malformed request',
  MEMBRANE_ERR_PROXY_LISTEN: 'the proxy cannot listen',
  MEMBRANE_ERR_PROXY_RESPONSE: 'the upstream response cannot be relayed',
  MEMBRANE_ERR_OBSERVE_FILTER: 'invalid flow filter',
  MEMBRANE_ERR_OBSERVE_OUTPUT: 'cannot write flow output',
  MEMBRANE_ERR_HUBBLE_LISTEN: 'the Hubble observer cannot listen',
  MEMBRANE_ERR_API_LISTEN: 'the agent API cannot listen',
  MEMBRANE_ERR_METRICS_LISTEN: 'the metrics endpoint cannot listen',
  MEMBRANE_ERR_CLI_USAGE: 'invalid command line',
  MEMBRANE_ERR_STATE: 'cannot read or write the state directory',
  MEMBRANE_ERR_REGEX_NATIVE: 'the RE2 program-size addon is not built',
  MEMBRANE_ERR_UNEXPECTED: 'unexpected internal error',
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

/** The JSON body of an API error response (`{ error: WireError }`). */
export interface WireError {
  readonly code: string;
  readonly message: string;
  readonly details?: Record<string, unknown>;
}

/** What the agent API sends for an error: the code and message travel unchanged. */
export function errorToWire(err: MembraneError): WireError {
  return { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) };
}

/**
 * Rebuilds an error that crossed the API: same code, same message (it already starts with the
 * registry text), its details plus `extra` (e.g. the HTTP status). A body that is not a
 * WireError, or names a code this build does not know (a newer agent), becomes
 * MEMBRANE_ERR_AGENT_API carrying the original code and text, so nothing is lost.
 */
export function errorFromWire(body: unknown, extra: Record<string, unknown> = {}): MembraneError {
  const w = (typeof body === 'object' && body !== null ? body : {}) as Partial<WireError>;
  const message = typeof w.message === 'string' ? w.message : undefined;
  const details = { ...(typeof w.details === 'object' && w.details !== null ? w.details : {}), ...extra };
  if (typeof w.code === 'string' && w.code in ERROR_CODES && message !== undefined) {
    const err = new Error(message) as Error & { code: ErrorCode; details?: Record<string, unknown> };
    err.name = 'MembraneError';
    err.code = w.code as ErrorCode;
    err.details = details;
    return err as MembraneError;
  }
  const original = typeof w.code === 'string' ? ` [${w.code}]` : '';
  return membraneError('MEMBRANE_ERR_AGENT_API', `${message ?? 'no error body'}${original}`, {
    details: typeof w.code === 'string' ? { ...details, code: w.code } : details,
  });
}
