// The host's extra CA certificates, installed at every boot from the `setup` message:
// the guest then trusts what the host trusts (a TLS-inspecting proxy's CA, a company CA) and
// nothing the host stopped trusting stays behind. Everything is written as root, 0644: readable,
// not writable, by vibe. In-process, no update-ca-certificates (a shell loop and openssl rehash
// over ~150 files cost seconds under emulation): the agent edits the bundle itself, and leaves
// the certificates where update-ca-certificates finds them, so a later run (an apt upgrade of
// ca-certificates) keeps them.
import { X509Certificate, createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { extraBodies, parseReceivedBundle, pemBodies, renderBundle, renderPem } from '../ca-certs.js';

/** Debian's bundle: curl, git, apt, Python's ssl and Go read it. */
export const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
/** Where update-ca-certificates looks for local CAs (one certificate a file). */
export const LOCAL_CA_DIR = '/usr/local/share/ca-certificates/vibebox-host';
/** Only the extras, for Node (NODE_EXTRA_CA_CERTS; Node keeps its own Mozilla list otherwise). */
export const HOST_CA_FILE = '/etc/vibebox/host-cas.pem';
/** What the last install saw (hashes of the received text and of the bundle it left): an unchanged boot stops here. */
export const STAMP_FILE = '/etc/vibebox/host-cas.stamp';

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw e;
  }
}

function writeAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.vibebox-tmp`;
  writeFileSync(tmp, text, { mode: 0o644 });
  chmodSync(tmp, 0o644);
  renameSync(tmp, path);
}

function sha(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function fileName(body: string): string {
  return `host-${createHash('sha256').update(body).digest('hex').slice(0, 16)}.crt`;
}

/**
 * Make the guest trust exactly its own bundle plus the received certificates (PEM text, checked
 * here: PEM certificate blocks only, size and count caps, each a parseable X.509 certificate).
 * `root` prefixes every path (tests). Returns the environment every exec gets.
 */
export function installHostCas(pem: string | undefined, root = ''): Record<string, string> {
  const at = (p: string) => root + p;
  const env = { NODE_EXTRA_CA_CERTS: HOST_CA_FILE };
  // Parsing two ~200 kB bundles costs ~100 ms under emulation; hashing them, a few.
  const stamp = `${sha(pem ?? '')} ${sha(readOr(at(SYSTEM_BUNDLE), ''))}\n`;
  if (readOr(at(STAMP_FILE), '') === stamp) return env;
  const received = pem === undefined ? [] : parseReceivedBundle(pem);

  // What a previous boot installed (their bodies are in the bundle too, but are not Debian's).
  mkdirSync(at(LOCAL_CA_DIR), { recursive: true, mode: 0o755 });
  const before = new Map<string, string>();
  for (const name of readdirSync(at(LOCAL_CA_DIR))) {
    if (!name.endsWith('.crt')) continue;
    const body = pemBodies(readFileSync(join(at(LOCAL_CA_DIR), name), 'utf8'))[0];
    if (body) before.set(name, body);
  }
  const previous = new Set(before.values());
  const bundle = pemBodies(readOr(at(SYSTEM_BUNDLE), ''));
  const own = new Set(bundle.filter((b) => !previous.has(b)));
  const extras = extraBodies(received, own);
  for (const b of extras) {
    if (previous.has(b)) continue;
    try {
      new X509Certificate(Buffer.from(b, 'base64'));
    } catch {
      throw new Error('CA bundle holds a block that is not an X.509 certificate');
    }
  }

  const want = new Map(extras.map((b) => [fileName(b), b]));
  for (const name of before.keys()) if (!want.has(name)) unlinkSync(join(at(LOCAL_CA_DIR), name));
  for (const [name, b] of want) if (!before.has(name)) writeAtomic(join(at(LOCAL_CA_DIR), name), renderPem(b));

  const wanted = new Set(extras);
  const inBundle = new Set(bundle);
  const stale = (b: string) => previous.has(b) && !wanted.has(b);
  if (extras.some((b) => !inBundle.has(b)) || bundle.some(stale)) {
    writeAtomic(at(SYSTEM_BUNDLE), renderBundle([...bundle.filter((b) => !stale(b)), ...extras.filter((b) => !inBundle.has(b))]));
  }
  const nodeText = renderBundle(extras);
  if (readOr(at(HOST_CA_FILE), '\0') !== nodeText) writeAtomic(at(HOST_CA_FILE), nodeText);
  writeAtomic(at(STAMP_FILE), `${sha(pem ?? '')} ${sha(readOr(at(SYSTEM_BUNDLE), ''))}\n`);
  return env;
}
