// Certificates for the mutual-TLS tests, made by the openssl CLI: a CA, and certificates it signs, laid out as
// cert-manager writes a Secret (tls.crt, tls.key, ca.crt), so the same directory serves a shard-server's --tls-*
// flags and a kubernetes.io/tls Secret.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface Ca {
  dir: string;
  cert: string;
  key: string;
}

const openssl = (args: string[], cwd: string) => {
  try {
    return execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const missing = (e as { code?: string }).code === 'ENOENT';
    if (missing) throw new Error('the openssl CLI is needed (the Debian package openssl; local-cluster/node/install-packages.sh installs it)');
    throw e;
  }
};
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

export function makeCa(dir: string, name = 'recshard-test-ca'): Ca {
  mkdirSync(dir, { recursive: true });
  openssl(['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${name}`], dir);
  return { dir, cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
}

/** A certificate for `dnsNames`, for servers and clients both, signed by `ca`, in `dir` as tls.crt, tls.key, ca.crt. */
export function issue(ca: Ca, dir: string, dnsNames: string[], opts: { trust?: Ca } = {}): { cert: string; key: string; ca: string } {
  mkdirSync(dir, { recursive: true });
  openssl(['req', ...EC, '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', `/CN=${dnsNames[0]}`], dir);
  writeFileSync(join(dir, 'ext'), `subjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
  openssl(['x509', '-req', '-in', 'tls.csr', '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-out', 'tls.crt', '-days', '1', '-extfile', 'ext'], dir);
  writeFileSync(join(dir, 'ca.crt'), readFileSync((opts.trust ?? ca).cert));
  return { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key'), ca: join(dir, 'ca.crt') };
}

export const tlsFlags = (f: { cert: string; key: string; ca: string }) => [`--tls-cert=${f.cert}`, `--tls-key=${f.key}`, `--tls-ca=${f.ca}`];
