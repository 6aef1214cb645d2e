import { membraneError, type MembraneError } from '../../errors/index.js';

/** Every filter that cannot be compiled fails with one code, naming the criterion and value. */
export function filterError(criterion: string, detail: string): MembraneError {
  return membraneError('MEMBRANE_ERR_OBSERVE_FILTER', `${criterion}: ${detail}`, { details: { criterion } });
}

/** True when the list is set and not empty (Hubble treats an empty list as unset). */
export function isSet<T>(values: readonly T[] | undefined): values is readonly T[] {
  return values !== undefined && values.length > 0;
}
