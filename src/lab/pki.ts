/**
 * The lab's PKI, made at `lab up` with Debian's openssl: a CA that signs one server certificate
 * naming every world site (subjectAltName DNS entries), so curl in the pods verifies the world's
 * HTTPS exactly as it verifies a public site, without -k. Keys are P-256 and never leave the
 * lab's state directory (mode 0700); `lab down` removes them.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../datapath/index.js';

export interface LabPki {
  readonly dir: string;
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
}

/** Days the lab certificates are valid: a lab lives for a session, not a year. */
const VALID_DAYS = '30';

/** Creates the CA and a server certificate for `hosts` under `dir` (replacing what is there). */
export function makeLabPki(dir: string, labName: string, hosts: readonly string[]): LabPki {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = (f: string): string => join(dir, f);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('openssl', [
    'req', '-x509', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', VALID_DAYS,
    '-subj', `/O=Membrane lab/CN=Membrane lab ${labName} CA`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  run('openssl', ['req', '-new', ...ec, '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', `/O=Membrane lab/CN=${hosts[0] ?? 'world'}`]);
  writeFileSync(
    p('server.ext'),
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${hosts.map((h) => `DNS:${h}`).join(',')}`,
      '',
    ].join('\n'),
  );
  run('openssl', [
    'x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial',
    '-out', p('server.crt'), '-days', VALID_DAYS, '-extfile', p('server.ext'),
  ]);
  return { dir, caCert: p('ca.crt'), serverCert: p('server.crt'), serverKey: p('server.key') };
}
