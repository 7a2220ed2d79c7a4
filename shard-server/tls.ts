// Mutual TLS between a main and its sparse shards (optional): both present a certificate signed by the model's
// CA (cert-manager's Secret layout: tls.crt, tls.key, ca.crt), the shards require the main's, the main checks the
// shard's against the name it dials (`<shard>.<namespace>.svc`). The files are re-read every RELOAD_MS: a rotated
// certificate (cert-manager renews into the same Secret, the kubelet updates the mounted files) serves new
// connections without a restart.
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContextOptions, type SecureVersion } from 'node:tls';

export interface TlsFiles {
  cert: string;
  key: string;
  ca: string;
}

export const RELOAD_MS = 30_000;

/** The TLS versions both sides accept. */
export const MIN_TLS_VERSION: SecureVersion = 'TLSv1.2';

export class TlsError extends Error {
  override name = 'TlsError';
}

function read(files: TlsFiles): Required<Pick<SecureContextOptions, 'cert' | 'key' | 'ca'>> {
  const file = (flag: string, path: string) => {
    try {
      return readFileSync(path);
    } catch (e) {
      throw new TlsError(`${flag} ${path}: ${(e as Error).message}`);
    }
  };
  const m = { cert: file('--tls-cert', files.cert), key: file('--tls-key', files.key), ca: file('--tls-ca', files.ca) };
  try {
    createSecureContext(m); // a key that does not match its certificate, or PEM that does not parse, fails here
  } catch (e) {
    throw new TlsError(`--tls-cert/--tls-key/--tls-ca: ${(e as Error).message}`);
  }
  return m;
}

/** The certificate, key and CA, as last read; `generation` counts the changes seen. */
export class TlsMaterial {
  generation = 0;
  private pem: ReturnType<typeof read>;
  private timer?: NodeJS.Timeout;

  /** Reads the files now: a missing or broken one is a TlsError naming its flag. */
  constructor(readonly files: TlsFiles) {
    this.pem = read(files);
  }

  get options(): ReturnType<typeof read> {
    return this.pem;
  }

  /** Re-reads the files now; true when they changed (a failed read keeps the last good ones). */
  reload(): boolean {
    let next: ReturnType<typeof read>;
    try {
      next = read(this.files);
    } catch {
      return false; // mid-rotation (the kubelet swaps the files at once, but be safe): the next look will see them
    }
    const same = (['cert', 'key', 'ca'] as const).every((k) => Buffer.compare(next[k] as Buffer, this.pem[k] as Buffer) === 0);
    if (same) return false;
    this.pem = next;
    this.generation++;
    return true;
  }

  /** Re-reads every intervalMs, calling onChange after a change. */
  watch(onChange: () => void, intervalMs = RELOAD_MS): void {
    this.stop();
    this.timer = setInterval(() => {
      if (this.reload()) onChange();
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
