/** src/lab: local lab pods as network namespaces (see lab.ts). */
export { parseLabSpec, podAddress, hostIfname } from './spec.js';
export type { LabSpec, LabPod, LabService } from './spec.js';
export { labUp, labDown, labExec, readLabState, LAB_STATE_DIR } from './lab.js';
export type { LabState, EndpointRegistrar } from './lab.js';
