/**
 * `membrane lab up` checks each pod's proxy visibility annotation before anything is created: a
 * lab spec is the user's file, so a value that does not parse is refused with the pod and the
 * annotation named (the agent, like Cilium for a pod, would create the endpoint and ignore it).
 */
import { membraneError } from '../errors/index.js';
import type { LabSpec } from '../lab/index.js';
import { parseProxyVisibility, visibilityAnnotation } from '../policy/index.js';

/** Throws MEMBRANE_ERR_LAB_SPEC for the first pod whose visibility annotation does not parse. */
export function checkLabVisibility(spec: LabSpec, file: string): void {
  spec.pods.forEach((pod, i) => {
    const a = visibilityAnnotation(pod.annotations);
    if (!a) return;
    const r = parseProxyVisibility(a.value);
    if (!r.ok) throw membraneError('MEMBRANE_ERR_LAB_SPEC', `${file}: spec.pods[${i}].annotations["${a.name}"]: pod ${pod.namespace}/${pod.name}: ${r.error}`);
  });
}
