// The CA certificates the host trusts beyond its distribution's set, sent to the guest in the
// agent's `setup` message at every boot. Read from where users and admins put them:
// NODE_EXTRA_CA_CERTS and SSL_CERT_FILE (often the whole system bundle, as on CI machines behind
// a TLS-inspecting proxy) and the local-anchor directories of Debian, Fedora and Arch. The guest
// adds only what its own Debian bundle lacks, so sending a whole bundle costs bytes, not trust
// the host does not give.
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MAX_CAS, MAX_CA_PEM_BYTES, pemBodies, renderBundle } from '../../guest/ca-certs.js';

const ANCHOR_DIRS = ['/usr/local/share/ca-certificates', '/etc/pki/ca-trust/source/anchors', '/etc/ca-certificates/trust-source/anchors'];
/** Files larger than this are not CA bundles; skipped rather than read. */
const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** The files to read, in order: the environment's first, then the anchor directories (recursive). */
export function caSourceFiles(env: NodeJS.ProcessEnv = process.env, dirs: readonly string[] = ANCHOR_DIRS): string[] {
  const out: string[] = [];
  for (const k of ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE']) {
    const v = env[k];
    if (v && !out.includes(v)) out.push(v);
  }
  const walk = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(dir, n);
      try {
        const s = statSync(p);
        if (s.isDirectory() && depth < 4) walk(p, depth + 1);
        else if (s.isFile() && /\.(crt|pem|cer)$/i.test(n) && !out.includes(p)) out.push(p);
      } catch {
        // vanished or unreadable: not ours to trust
      }
    }
  };
  for (const d of dirs) walk(d, 0);
  return out;
}

/**
 * The host's CA certificates as one PEM bundle for the guest, or undefined when there are none.
 * Unreadable files and blocks that are not X.509 certificates are skipped; the caps of the
 * protocol apply (the first certificates win).
 */
export function hostCaBundle(env: NodeJS.ProcessEnv = process.env, dirs: readonly string[] = ANCHOR_DIRS): string | undefined {
  const seen = new Set<string>();
  const bodies: string[] = [];
  let bytes = 0;
  for (const f of caSourceFiles(env, dirs)) {
    let text: string;
    try {
      if (statSync(f).size > MAX_FILE_BYTES) continue;
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const b of pemBodies(text)) {
      if (seen.has(b)) continue;
      seen.add(b);
      try {
        new X509Certificate(Buffer.from(b, 'base64'));
      } catch {
        continue;
      }
      const size = b.length + Math.ceil(b.length / 64) + 56;
      if (bodies.length >= MAX_CAS || bytes + size > MAX_CA_PEM_BYTES) break;
      bytes += size;
      bodies.push(b);
    }
  }
  return bodies.length > 0 ? renderBundle(bodies) : undefined;
}

/** The `cas` field of the setup message: present only when the host has CA certificates. */
export function setupCas(): { cas?: string } {
  const cas = hostCaBundle();
  return cas === undefined ? {} : { cas };
}
