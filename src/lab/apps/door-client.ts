/**
 * The public terminal's gRPC client (terminal-87 in Cilium's gRPC guide), with the guide's output:
 *
 *   node dist/lab/apps/door-client.js <host:port> GetName 1          → Door name is: Spaceport Door #1
 *   node dist/lab/apps/door-client.js <host:port> SetAccessCode 1 999 → Successfully set AccessCode to 999
 *   node dist/lab/apps/door-client.js <host:port> WatchStatus 1 <count> <interval-ms>
 *   node dist/lab/apps/door-client.js <host:port> RequestMaintenance 1 <bytes>  (a description that long)
 *
 * A failed call prints `Error: <CODE> (<n>): <details>` on stderr and exits 1.
 */
import { credentials, status, type Client, type ServiceError } from '@grpc/grpc-js';
import { doorManagerService } from './cloudcity.js';

type Callback = (err: ServiceError | null, reply: Record<string, unknown>) => void;
type Unary = (req: Record<string, unknown>, cb: Callback) => void;

const [target, method, a1 = '1', a2 = '0', a3 = '0'] = process.argv.slice(2);
if (!target || !method) {
  process.stderr.write('usage: door-client <host:port> <method> [door-id] [args…]\n');
  process.exit(2);
}
const Ctor = doorManagerService();
// No service-config TXT lookup: a lab without a DNS server would hold the process until it timed out.
const client = new Ctor(target, credentials.createInsecure(), {
  'grpc.max_send_message_length': 8 * 1024 * 1024,
  'grpc.service_config_disable_resolution': 1,
}) as Client & Record<string, Unary>;
const doorId = Number(a1);

function fail(err: ServiceError): never {
  process.stderr.write(`Error: ${status[err.code]} (${err.code}): ${err.details}\n`);
  process.exit(1);
}

function call(req: Record<string, unknown>, print: (reply: Record<string, unknown>) => string): void {
  const fn = client[method as string];
  if (typeof fn !== 'function') {
    process.stderr.write(`no method ${method}\n`);
    process.exit(2);
  }
  fn.call(client, req, (err, reply) => {
    if (err) fail(err);
    process.stdout.write(`${print(reply)}\n`);
    client.close();
  });
}

switch (method) {
  case 'GetName':
    call({ door_id: doorId }, (r) => `Door name is: ${String(r.name)}`);
    break;
  case 'GetLocation':
    call({ door_id: doorId }, (r) => `Door location is lat = ${String(r.lat)} long = ${String(r.long)}`);
    break;
  case 'GetStatus':
    call({ door_id: doorId }, (r) => `Door status is: ${String(r.state)}`);
    break;
  case 'RequestMaintenance':
    call({ door_id: doorId, maint_description: 'x'.repeat(Math.max(1, Number(a2) || 1)) }, (r) => (r.success ? 'Successfully requested maintenance' : 'Maintenance request failed'));
    break;
  case 'SetAccessCode':
    call({ door_id: doorId, access_code: Number(a2) }, (r) => (r.success ? `Successfully set AccessCode to ${a2}` : 'Failed to set AccessCode'));
    break;
  case 'WatchStatus': {
    const stream = (client as unknown as { WatchStatus(req: Record<string, unknown>): NodeJS.ReadableStream & { on(ev: 'error', f: (e: ServiceError) => void): void } }).WatchStatus({
      door_id: doorId,
      count: Number(a2) || 1,
      interval_ms: Number(a3) || 100,
    });
    let n = 0;
    stream.on('data', (r: { state: string; seq: number }) => {
      n++;
      process.stdout.write(`Door status #${r.seq}: ${r.state}\n`);
    });
    stream.on('error', (e: ServiceError) => fail(e));
    stream.on('end', () => {
      process.stdout.write(`Stream ended after ${n} updates\n`);
      client.close();
    });
    break;
  }
  default:
    process.stderr.write(`no method ${method}\n`);
    process.exit(2);
}
