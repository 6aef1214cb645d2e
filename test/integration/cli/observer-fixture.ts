/**
 * A real HubbleServer for the built CLI to observe: its ring filled with `flows` before the tests
 * of the enclosing `describe` and the server on `DIR/hubble.sock`, closed (and the temp dirs
 * removed) after them. Call it inside a `describe`: it registers that block's beforeAll/afterAll.
 */
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { HubbleServer } from '../../../src/hubble/index.js';
import { FlowRing, type Flow } from '../../../src/observe/index.js';
import { assertBuilt, removeTempDirs, tempDir } from './run-cli.js';

export interface Observer {
  /** The temp dir the socket is in. */
  readonly dir: string;
  /** The server's ring: a test may push more flows. */
  readonly ring: FlowRing;
  /** `--server` for the CLI: `unix://DIR/hubble.sock`. */
  readonly server: string;
}

export function observerWith(prefix: string, flows: () => readonly Flow[], capacity = 64): Observer {
  const dir = tempDir(prefix);
  const ring = new FlowRing({ capacity });
  const hubble = new HubbleServer({ flows: ring, nodeName: 'node-1', version: 'v' }, { info: () => {}, warn: () => {} });
  beforeAll(async () => {
    assertBuilt();
    for (const f of flows()) ring.push(f);
    await hubble.listen({ socketPath: join(dir, 'hubble.sock') });
  });
  afterAll(async () => {
    await hubble.close();
    removeTempDirs();
  });
  return { dir, ring, server: `unix://${join(dir, 'hubble.sock')}` };
}
