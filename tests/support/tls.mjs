// A self-signed certificate for 127.0.0.1 / localhost, made with openssl: for the HTTPS servers
// the tests and the benchmark run locally (metadata documents, the stand-in IdP over HTTPS).
// Trusted by marking it a CA and naming it in NODE_EXTRA_CA_CERTS.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes key.pem and cert.pem into `dir`: { keyPath, certPath, key, cert }. */
export function selfSignedCert(dir, { days = 2 } = {}) {
  const keyPath = join(dir, 'key.pem');
  const certPath = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', String(days),
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '-addext', 'basicConstraints=critical,CA:TRUE',
  ], { stdio: 'ignore' });
  return { keyPath, certPath, key: readFileSync(keyPath), cert: readFileSync(certPath) };
}
