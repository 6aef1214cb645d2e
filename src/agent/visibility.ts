/**
 * An endpoint's proxy visibility, from its pod annotations (`policy.cilium.io/proxy-visibility`,
 * or the older `io.cilium.proxy-visibility`). See src/policy/api/visibility.ts for the grammar and
 * src/policy/resolve/visibility.ts for how it is applied (redirects only, verdicts unchanged).
 *
 * An annotation that does not parse is ignored, as Cilium ignored it (the endpoint is created and
 * enforced as without it; Cilium logged a warning and showed the error in the CiliumEndpoint's
 * "VISIBILITY POLICY" column): `visibilityError` says why, the agent logs it once and
 * `GET /v1/endpoints` reports it. A pod's network does not depend on an observability setting.
 */
import { parseProxyVisibility, visibilityAnnotation, type VisibilityPolicy } from '../policy/index.js';

export interface EndpointVisibility {
  /** null: no annotation, or one that did not parse. */
  readonly visibility: VisibilityPolicy | null;
  /** `<annotation name>: <why>` when the annotation did not parse. */
  readonly visibilityError?: string;
}

export function endpointVisibility(annotations: Readonly<Record<string, string>> | undefined): EndpointVisibility {
  const a = visibilityAnnotation(annotations);
  if (!a) return { visibility: null };
  const r = parseProxyVisibility(a.value);
  return r.ok ? { visibility: r.policy } : { visibility: null, visibilityError: `${a.name}: ${r.error}` };
}

/** The CiliumEndpoint's "VISIBILITY POLICY" column: absent without annotation, `OK`, or the error. */
export function visibilityStatus(ep: EndpointVisibility): string | undefined {
  if (ep.visibilityError) return ep.visibilityError;
  return ep.visibility ? 'OK' : undefined;
}
