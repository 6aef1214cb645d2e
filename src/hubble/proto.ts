/**
 * Loads Membrane's Hubble API (`api/v1/{observer,flow,relay}/*.proto`, Hubble's names and field
 * numbers) with @grpc/proto-loader, once per process.
 *
 * Message objects keep the proto field names (`keepCase`: `IP`, `Type`, `pod_name`, `Summary`),
 * enums travel as their names, 64-bit integers as JS numbers, and unset fields stay absent
 * (`defaults: false`), so a decoded flow reads like Hubble's JSON.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The options both ends use; a client generated elsewhere only needs the same wire format. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: false,
  oneofs: false,
};

/**
 * The directory holding `observer/observer.proto`: `api/v1/` of the checkout this module runs from
 * (src/, dist/ or a bench build nested one level deeper).
 */
export function protoRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'api', 'v1');
    if (existsSync(join(candidate, 'observer', 'observer.proto'))) return candidate;
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  throw new Error(`api/v1/observer/observer.proto not found above ${from}`);
}

export interface ObserverPackage {
  /** The `observer.Observer` service, for `server.addService`. */
  service: grpc.ServiceDefinition;
  /** A client constructor for `observer.Observer`. */
  Client: grpc.ServiceClientConstructor;
}

let cached: ObserverPackage | null = null;

/** The `observer.Observer` service and client, loaded from our .proto files (cached). */
export function observerPackage(): ObserverPackage {
  if (cached) return cached;
  const root = protoRoot();
  const def = protoLoader.loadSync(join(root, 'observer', 'observer.proto'), { ...PROTO_LOADER_OPTIONS, includeDirs: [root] });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { observer: { Observer: grpc.ServiceClientConstructor } };
  cached = { service: pkg.observer.Observer.service, Client: pkg.observer.Observer };
  return cached;
}

/** `membrane <version>` from the checkout's package.json, as ServerStatus.version reports it. */
export function serverVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(protoRoot(), '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return `membrane ${pkg.version ?? 'unknown'}`;
  } catch {
    return 'membrane unknown';
  }
}
