/** src/lab: local lab pods as network namespaces (see lab.ts). */
export { parseLabSpec, podAddress, hostIfname, dnsPod } from './spec.js';
export type { LabSpec, LabPod, LabService } from './spec.js';
export type { LabDns, DnsRecord } from './spec-dns.js';
export type { LabWorld, WorldSite } from './spec-world.js';
export { worldIfname, worldLink } from './spec-world.js';
export { dnsmasqConfig } from './dnsmasq.js';
export { labUp, labDown, labExec, readLabState, LAB_STATE_DIR } from './lab.js';
export type { LabState, EndpointRegistrar } from './lab.js';
