/**
 * `app: door-manager`: the gRPC door service of Cilium's gRPC guide (cc-door-mgr), on the pod's
 * port (50051 in the guide). Every call is logged as one JSON line (`log`), like the other lab apps.
 */
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { doorManagerService } from './cloudcity.js';

type Log = (entry: Record<string, unknown>) => void;

const DOORS: Record<number, { name: string; lat: number; long: number }> = {
  1: { name: 'Spaceport Door #1', lat: 10.2222, long: 68.8788 },
  2: { name: 'Spaceport Door #2', lat: 10.2223, long: 68.8791 },
};

/** Serves on `host:port` (port 0: any); resolves with the bound port. */
export function serveDoorManager(port: number, log: Log, host = '0.0.0.0'): Promise<{ server: Server; port: number }> {
  const server = new Server({ 'grpc.max_receive_message_length': 8 * 1024 * 1024 });
  let accessCode = 0;
  const door = (id: number): (typeof DOORS)[number] | undefined => DOORS[id];
  const unary =
    <Req, Res>(method: string, fn: (req: Req) => Res | { code: status; details: string }) =>
    (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>): void => {
      log({ grpc: method, from: call.getPeer() });
      const out = fn(call.request);
      if (out !== null && typeof out === 'object' && 'code' in (out as object)) cb(out as { code: status; details: string });
      else cb(null, out as Res);
    };
  const notFound = { code: status.NOT_FOUND, details: 'no such door' };
  server.addService(doorManagerService().service, {
    GetName: unary<{ door_id: number }, { name: string }>('GetName', (r) => (door(r.door_id) ? { name: door(r.door_id)!.name } : notFound)),
    GetLocation: unary<{ door_id: number }, { lat: number; long: number }>('GetLocation', (r) => {
      const d = door(r.door_id);
      return d ? { lat: d.lat, long: d.long } : notFound;
    }),
    GetStatus: unary<{ door_id: number }, { state: string; seq: number }>('GetStatus', (r) => (door(r.door_id) ? { state: 'CLOSED', seq: 0 } : notFound)),
    RequestMaintenance: unary<{ door_id: number; maint_description: string }, { success: boolean }>('RequestMaintenance', (r) => ({
      success: door(r.door_id) !== undefined && r.maint_description.length > 0,
    })),
    SetAccessCode: unary<{ door_id: number; access_code: number }, { success: boolean }>('SetAccessCode', (r) => {
      accessCode = r.access_code;
      return { success: door(r.door_id) !== undefined && accessCode === r.access_code };
    }),
    WatchStatus: (call: ServerWritableStream<{ door_id: number; count: number; interval_ms: number }, { state: string; seq: number }>): void => {
      log({ grpc: 'WatchStatus', from: call.getPeer() });
      const count = Math.min(call.request.count || 1, 10_000);
      const interval = Math.max(call.request.interval_ms, 1);
      let seq = 0;
      const tick = (): void => {
        if (call.cancelled) return;
        call.write({ state: seq % 2 === 0 ? 'CLOSED' : 'OPEN', seq });
        seq++;
        if (seq >= count) call.end();
        else setTimeout(tick, interval);
      };
      tick();
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(err);
      else resolve({ server, port: bound });
    });
  });
}
