/**
 * src/datapath: the TypeScript face of bpf/ and native/.
 *
 *   agent ──► Datapath.open(pinRoot) ──► native addon ──► kernel (pinned maps, TCX links)
 *         ──► syncIpcache / upsertEndpoint / syncEndpointPolicy   (desired state in, diffs out)
 *         ◄── onEvents (ring buffer)  ◄── from_endpoint / to_endpoint
 *   l7proxy ─► transparentListenFd / connectMarked (SO_MARK carries the source identity)
 *   dnsproxy ─► udpListenTransparent / udpReplySocket / udpConnectMarked (UDP, same marks)
 */
export { Datapath, DEFAULT_OBJECT_PATH, DEFAULT_PIN_ROOT, removePins, parseIpv4Prefix, ctNow } from './datapath.js';
export type { DatapathOptions, EndpointMapValue, CtEntryView, PolicySnapshot, DeferredDeletes, MetricsCounter, MapPressure } from './datapath.js';
export type { PolicyMapEntry } from './maps/policy.js';
export type { FlowEvent } from './maps/events.js';
export { EVENT_DIRECTION } from './maps/events.js';
export { fromProxyMark, identityFromMark, MARK_FROM_PROXY, MARK_TO_PROXY } from './marks.js';
export { ensureNodeNetwork, removeNodeNetwork } from './netconf.js';
export { transparentListenFd, connectMarked } from './sockets.js';
export { IpcacheView } from './ipcache-view.js';
export { udpListenTransparent, udpReplySocket, udpConnectMarked, type UdpDatagram, type NativeUdpSocket } from './sockets.js';
export { ipv4ToNumber, numberToIpv4 } from './layout.js';
export { run, ipJson } from './system.js';
export { linkIndex, nodeAddresses } from './links.js';
export { setThreadNice, threadNice } from './thread.js';
