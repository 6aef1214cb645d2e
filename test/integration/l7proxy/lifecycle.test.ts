import { connect } from 'node:net';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { HttpProxy } from '../../../src/l7proxy/index.js';
import { isMembraneError } from '../../../src/errors/index.js';
import { ALLOW_ALL_HTTP, Cleanups, startProxy, startUpstream, until } from './harness.js';

const HOST = 'deathstar.default.svc.cluster.local';
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

describe('lifecycle', () => {
  it('close() lets an in-flight request finish, then refuses new connections', async () => {
    const upstream = await startUpstream(cleanups, (_req, res) => {
      setTimeout(() => res.end('slow but fine'), 200);
    });
    // A grace period no test run reaches: close() must end because the request did, not the timer.
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP, options: { closeGraceMs: 3_600_000 } });
    const c = new Client(`http://127.0.0.1:${h.port}`);
    cleanups.add(() => c.destroy());
    const pending = c.request({ path: '/slow', method: 'GET', headers: { host: HOST } });
    // In flight = the upstream has it (a request still on its way to the proxy is not in flight).
    await until(() => upstream.requests.length === 1);
    const closing = h.proxy.close();
    const res = await pending;
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('slow but fine');
    await closing;
    const refused = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: h.port });
      s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      s.on('connect', () => {
        s.destroy();
        resolve('connected');
      });
    });
    expect(refused).toBe('ECONNREFUSED');
    expect(h.proxy.stats()).toMatchObject({ connections: 0, upstreamPools: 0 });
  });

  it('close() on an idle proxy is quick and idempotent; listen errors carry a code', async () => {
    const upstream = await startUpstream(cleanups);
    // Nothing in flight: close() must not wait for a grace period longer than the test's timeout.
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, options: { closeGraceMs: 3_600_000 } });
    await Promise.all([h.proxy.close(), h.proxy.close()]);

    const other = new HttpProxy({
      resolveConnection: () => null,
      l7Flow: () => {
        throw new Error('never asked: no connection is accepted');
      },
      connectUpstream: () => connect({ port: 1 }),
      onFlow: () => undefined,
      accessLog: pino({ level: 'silent' }),
    });
    cleanups.add(() => other.close());
    let err: unknown;
    try {
      await other.listen({ port: upstream.port, host: '127.0.0.1' }); // taken
    } catch (e) {
      err = e;
    }
    expect(isMembraneError(err, 'MEMBRANE_ERR_PROXY_LISTEN')).toBe(true);
  });
});
