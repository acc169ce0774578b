import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findOnPath } from './executables.ts';

const run = promisify(execFile);

export interface TestCertificates {
  /** The CA certificate (PEM) a client must be told to trust. */
  ca: string;
  /** A server certificate signed by it, for `localhost`, 127.0.0.1, 127.0.0.2 and ::1, and its key. */
  cert: string;
  key: string;
}

/**
 * A throwaway CA and a server certificate, made with the `openssl` command
 * (Node can sign but not build an X.509 certificate, and the test suite
 * needs no npm package for this). Valid for a day; nothing is kept on disk.
 */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const openssl = await findOnPath('openssl');
  if (openssl === undefined) throw new Error('The webhook tests need the openssl command to make a test certificate; install OpenSSL.');
  const dir = await mkdtemp(join(tmpdir(), 'tessera-test-tls-'));
  try {
    const at = (name: string) => join(dir, name);
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    await run(openssl, ['req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.crt'), '-days', '1', '-subj', '/CN=Tessera test CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
    await run(openssl, ['req', ...ec, '-keyout', at('server.key'), '-out', at('server.csr'), '-subj', '/CN=localhost']);
    await writeFile(at('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2,IP:::1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    await run(openssl, ['x509', '-req', '-in', at('server.csr'), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial',
      '-out', at('server.crt'), '-days', '1', '-extfile', at('server.ext')]);
    const [ca, cert, key] = await Promise.all(['ca.crt', 'server.crt', 'server.key'].map((name) => readFile(at(name), 'utf8')));
    return { ca: ca!, cert: cert!, key: key! };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
