/**
 * hubble: Hubble's observer API (`observer.Observer` over gRPC, cilium api/v1 protos) for the
 * agent's flows. The agent serves it (HubbleServer); `membrane observe` reads it (ObserverClient).
 * Imports `observe` (flows, filters) and `errors`; the .proto files live in api/v1/.
 */
export { HubbleServer, HUBBLE_SOCKET_NAME, MAX_PENDING_PER_STREAM, type HubbleListenOptions, type ObserverSource } from './server.js';
export { abandonBinding, bindingPath, claimSocketPath, publishSocket, removeOwnSocket, type SocketFileId } from './socket-file.js';
export { ObserverClient, serverTarget, type ClientTls, type GetFlowsOptions, type ServerStatus } from './client.js';
export { filterFromProto, filterToProto, flowFromProto, flowToProto, nsToTime, timeToNs } from './convert.js';
export { observerPackage, protoRoot, PROTO_LOADER_OPTIONS, serverVersion } from './proto.js';
