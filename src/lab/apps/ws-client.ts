/**
 * A WebSocket client for lab pods (undici's WebSocket): sends each message and prints each reply.
 *
 *   node dist/lab/apps/ws-client.js ws://ws-echo/ws hello world
 *   → < ws-echo: hello
 *     < ws-echo: world
 *
 * A failed handshake (e.g. 403 from the policy) prints `Error: …` on stderr and exits 1.
 */
import { WebSocket } from 'undici';

const [url, ...messages] = process.argv.slice(2);
if (!url) {
  process.stderr.write('usage: ws-client <ws://host/path> [message…]\n');
  process.exit(2);
}
const ws = new WebSocket(url);
const pending = messages.length > 0 ? [...messages] : ['hello'];
const timer = setTimeout(() => {
  process.stderr.write('Error: timed out\n');
  process.exit(1);
}, 5000);
ws.addEventListener('open', () => ws.send(pending[0] as string));
ws.addEventListener('message', (ev) => {
  process.stdout.write(`< ${String(ev.data)}\n`);
  pending.shift();
  if (pending.length > 0) ws.send(pending[0] as string);
  else {
    clearTimeout(timer);
    ws.close(1000);
  }
});
ws.addEventListener('error', (ev) => {
  const cause = (ev as unknown as { error?: { message?: string } }).error?.message;
  process.stderr.write(`Error: WebSocket handshake failed${cause ? `: ${cause}` : ''}\n`);
  process.exit(1);
});
