import { connect } from 'node:net';
import { Client } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { HttpProxy } from '../../../src/l7proxy/index.js';
import { isMembraneError } from '../../../src/errors/index.js';
import { ALLOW_ALL_HTTP, Cleanups, startProxy, startUpstream } from './harness.js';

const HOST = 'deathstar.default.svc.cluster.local';
const cleanups = new Cleanups();
afterEach(() => cleanups.run());

describe('lifecycle', () => {
  it('close() lets an in-flight request finish, then refuses new connections', async () => {
    const upstream = await startUpstream(cleanups, (_req, res) => {
      setTimeout(() => res.end('slow but fine'), 200);
    });
    const h = await startProxy(cleanups, { upstreamPort: upstream.port, policy: ALLOW_ALL_HTTP });
    const c = new Client(`http://127.0.0.1:${h.port}`);
    cleanups.add(() => c.destroy());
    const pending = c.request({ path: '/slow', method: 'GET', headers: { host: HOST } });
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    const closing = h.proxy.close();
    const res = await pending;
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe('slow but fine');
    await closing;
    expect(Date.now() - started).toBeLessThan(2000); // did not wait for the grace period
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
    const h = await startProxy(cleanups, { upstreamPort: upstream.port });
    const t = Date.now();
    await Promise.all([h.proxy.close(), h.proxy.close()]);
    expect(Date.now() - t).toBeLessThan(2500); // well under the 5 s close grace: nothing to wait for

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
