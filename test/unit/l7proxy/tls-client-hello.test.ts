/**
 * issue-8 the ClientHello reader of the TLS passthrough listener: real ClientHellos captured from
 * `openssl s_client -servername` and Node's `tls.connect({servername})` on loopback, then the same
 * bytes truncated, split, oversized, with hostile lengths and garbage. Every verdict is read from
 * the bytes a real client sent.
 */
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientHelloReader } from '../../../src/l7proxy/index.js';

/** Listens on loopback and resolves the first `n` bytes (or all before close) of the next connection. */
async function captureFirstBytes(start: (port: number) => () => void): Promise<Buffer> {
  const server: Server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      let stop = (): void => undefined;
      const t = setTimeout(() => reject(new Error('no ClientHello captured')), 10_000);
      server.once('connection', (s) => {
        const reader = new ClientHelloReader();
        const chunks: Buffer[] = [];
        s.on('data', (c: Buffer) => {
          chunks.push(c);
          if (reader.push(c).status !== 'incomplete') {
            clearTimeout(t);
            s.destroy();
            stop();
            resolve(Buffer.concat(chunks));
          }
        });
      });
      stop = start(port);
    });
  } finally {
    server.close();
  }
}

function fromNode(servername?: string): Promise<Buffer> {
  return captureFirstBytes((port) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ...(servername !== undefined ? { servername } : {}), rejectUnauthorized: false });
    s.on('error', () => undefined);
    return () => s.destroy();
  });
}

function fromOpenssl(args: string[]): Promise<Buffer> {
  return captureFirstBytes((port) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args], { stdio: ['pipe', 'ignore', 'ignore'] });
    p.on('error', () => undefined);
    return () => p.kill();
  });
}

function readAll(bytes: Buffer, chunk = bytes.length): ReturnType<ClientHelloReader['push']> {
  const r = new ClientHelloReader();
  let st = r.state;
  for (let i = 0; i < bytes.length && st.status === 'incomplete'; i += chunk) st = r.push(bytes.subarray(i, i + chunk));
  return st;
}

/** Offset of the server_name extension's host_name length field in a captured ClientHello. */
function hostNameOffset(hello: Buffer, name: string): number {
  const at = hello.indexOf(Buffer.from(name, 'latin1'));
  if (at < 0) throw new Error('name not in ClientHello');
  return at - 2;
}

let nodeHello: Buffer;
let nodeNoSni: Buffer;
let opensslHello: Buffer;
let opensslNoSni: Buffer;
let openssl12: Buffer;

beforeAll(async () => {
  nodeHello = await fromNode('api.github.com');
  nodeNoSni = await fromNode('');
  opensslHello = await fromOpenssl(['-servername', 'Support.GitHub.com']);
  opensslNoSni = await fromOpenssl(['-noservername']);
  openssl12 = await fromOpenssl(['-servername', 'tls12.example', '-tls1_2']);
}, 30_000);

afterAll(() => undefined);

describe('issue-8 ClientHello reader: real clients', () => {
  it('reads the SNI Node sends, whole and split into 1-byte chunks', () => {
    expect(readAll(nodeHello)).toEqual({ status: 'done', sni: 'api.github.com', consumed: nodeHello.length });
    expect(readAll(nodeHello, 1)).toMatchObject({ status: 'done', sni: 'api.github.com' });
    expect(readAll(nodeHello, 7)).toMatchObject({ status: 'done', sni: 'api.github.com' });
  });

  it('reads the SNI openssl s_client sends (TLS 1.3 and 1.2), as the client wrote it', () => {
    expect(readAll(opensslHello)).toMatchObject({ status: 'done', sni: 'Support.GitHub.com' });
    expect(readAll(openssl12)).toMatchObject({ status: 'done', sni: 'tls12.example' });
  });

  it('a ClientHello without server_name has no SNI', () => {
    expect(readAll(nodeNoSni)).toMatchObject({ status: 'done', sni: null });
    expect(readAll(opensslNoSni)).toMatchObject({ status: 'done', sni: null });
  });

  it('a ClientHello fragmented over several records is reassembled', () => {
    // Re-frame the handshake of a real ClientHello into records of 100 bytes each.
    const hs = nodeHello.subarray(5, 5 + nodeHello.readUInt16BE(3));
    const records: Buffer[] = [];
    for (let i = 0; i < hs.length; i += 100) {
      const frag = hs.subarray(i, i + 100);
      const h = Buffer.from([22, 3, 1, 0, 0]);
      h.writeUInt16BE(frag.length, 3);
      records.push(h, frag);
    }
    expect(readAll(Buffer.concat(records), 3)).toMatchObject({ status: 'done', sni: 'api.github.com' });
  });
});

describe('issue-8 ClientHello reader: truncated, oversized, garbage, hostile lengths', () => {
  it('a truncated ClientHello stays incomplete (the listener then times out or sees the end)', () => {
    for (const n of [1, 4, 5, 6, 43, nodeHello.length - 1]) expect(readAll(nodeHello.subarray(0, n)).status).toBe('incomplete');
  });

  it('garbage first bytes are refused at once', () => {
    expect(readAll(Buffer.from('GET / HTTP/1.1\r\nHost: api.github.com\r\n\r\n'))).toEqual({ status: 'error', error: 'not a TLS handshake record (first byte 0x47)' });
    expect(readAll(Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01]))).toMatchObject({ status: 'error' }); // SSLv2-style hello
    expect(readAll(Buffer.from([22, 9, 9, 0, 5, 1, 2, 3, 4, 5]))).toMatchObject({ status: 'error', error: 'unknown record version 0x0909' });
    expect(readAll(Buffer.from([22, 3, 1, 0, 0]))).toMatchObject({ status: 'error', error: 'empty handshake record' });
  });

  it('hostile record and handshake lengths are refused, never waited for', () => {
    expect(readAll(Buffer.from([22, 3, 1, 0xff, 0xff]))).toMatchObject({ status: 'error', error: 'record length 65535 exceeds 16384' });
    // A handshake header announcing 16 MiB.
    expect(readAll(Buffer.from([22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff]))).toMatchObject({ status: 'error' });
    // Not a ClientHello (ServerHello type).
    expect(readAll(Buffer.from([22, 3, 3, 0, 4, 2, 0, 0, 0]))).toMatchObject({ status: 'error', error: 'first handshake message is type 2, not ClientHello' });
  });

  it('a host_name length running past its list, or a list past its extension, is malformed', () => {
    const h = Buffer.from(nodeHello);
    const at = hostNameOffset(h, 'api.github.com');
    h.writeUInt16BE(0xfff0, at);
    expect(readAll(h)).toMatchObject({ status: 'error' });
    const l = Buffer.from(nodeHello);
    l.writeUInt16BE(0x0001, at - 3); // server_name_list length shorter than its entry
    expect(readAll(l)).toMatchObject({ status: 'error' });
  });

  it('a host_name that is no DNS name is malformed, not an SNI to match', () => {
    const h = Buffer.from(nodeHello);
    const at = hostNameOffset(h, 'api.github.com');
    h[at + 2 + 3] = 0x00; // "api\0github.com"
    expect(readAll(h)).toMatchObject({ status: 'error', error: 'host_name is not a DNS name' });
    const d = Buffer.from(nodeHello);
    d[at + 2 + 13] = 0x2e; // trailing dot "api.github.co."
    expect(readAll(d)).toMatchObject({ status: 'error', error: 'host_name is not a DNS name' });
  });

  it('bytes beyond the bound are refused: no complete ClientHello within it', () => {
    const r = new ClientHelloReader(1024);
    const big = Buffer.alloc(2000, 0);
    big.set([22, 3, 1, 0x3f, 0xff]);
    expect(r.push(big.subarray(0, 1000)).status).toBe('incomplete');
    expect(r.push(big.subarray(1000))).toEqual({ status: 'error', error: 'no complete ClientHello within 1024 bytes' });
  });

  it('a record after the ClientHello record ended with another content type is refused', () => {
    const hs = nodeHello.subarray(5, 5 + nodeHello.readUInt16BE(3));
    const first = Buffer.concat([Buffer.from([22, 3, 1, 0, 10]), hs.subarray(0, 10)]);
    const alert = Buffer.from([21, 3, 3, 0, 2, 2, 40]);
    expect(readAll(Buffer.concat([first, alert]))).toMatchObject({ status: 'error', error: 'record of content type 21 before the ClientHello ended' });
  });

  it('a duplicated extension is refused (RFC 8446 §4.2)', () => {
    // Duplicate the server_name extension by doubling it in the extensions block of a real hello.
    const h = nodeHello;
    const at = hostNameOffset(h, 'api.github.com');
    const extStart = at - 7; // type(2) len(2) listLen(2) nameType(1)
    const extLen = h.readUInt16BE(extStart + 2) + 4;
    const ext = h.subarray(extStart, extStart + extLen);
    const out = Buffer.concat([h.subarray(0, extStart + extLen), ext, h.subarray(extStart + extLen)]);
    // Fix the record, handshake and extensions lengths for the added bytes.
    out.writeUInt16BE(out.readUInt16BE(3) + extLen, 3);
    out.writeUIntBE(out.readUIntBE(6, 3) + extLen, 6, 3);
    const sidLen = out[5 + 4 + 2 + 32]!;
    let p = 5 + 4 + 2 + 32 + 1 + sidLen;
    p += 2 + out.readUInt16BE(p);
    p += 1 + out[p]!;
    out.writeUInt16BE(out.readUInt16BE(p) + extLen, p);
    expect(readAll(out)).toEqual({ status: 'error', error: 'extension 0 appears twice' });
  });
});
