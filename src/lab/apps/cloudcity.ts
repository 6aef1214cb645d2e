/**
 * The Cloud City door manager of Cilium's gRPC guide (deploy/lab/cloudcity/cloudcity.proto),
 * loaded with @grpc/proto-loader for the lab's server (door-manager) and client (door-client).
 */
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** From dist/lab/apps/ or src/lab/apps/: the repository's deploy/lab/cloudcity/cloudcity.proto. */
export const PROTO_PATH = fileURLToPath(new URL('../../../deploy/lab/cloudcity/cloudcity.proto', import.meta.url));

export function doorManagerService(): ServiceClientConstructor {
  const def = loadSync(PROTO_PATH, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = loadPackageDefinition(def).cloudcity as GrpcObject;
  return pkg.DoorManager as ServiceClientConstructor;
}
