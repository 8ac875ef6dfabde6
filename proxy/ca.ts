/**
 * The per-user vibebox CA and the leaf certificates the egress proxy shows for the hosts it
 * terminates TLS for (docs/architecture.md, Walls; README, Security model).
 *
 * Host only: the CA's key lives in one 0600 file under the vibebox home (`ca/ca.pem`, key and
 * certificate together, so two supervisors making it at once cannot pair one's key with the
 * other's certificate) and never travels; only the certificate goes to the guest, with the host's
 * extra CAs. Leaf certificates are issued only for names the caller asks for (the injection rules'
 * hosts), live a day, and are cached in memory until an hour before they expire.
 *
 * X.509 is built and signed by node-forge (see package.json): one dependency-free, long-maintained
 * package with a synchronous certificate API; keys are made by node's own crypto (forge's
 * pure-JS RSA key generation is slow) and handed to forge as PEM.
 */
import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto';
import { chmodSync, closeSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import forge from 'node-forge';

const CA_YEARS = 5;
export const LEAF_LIFETIME_MS = 24 * 3600_000;
/** a cached leaf is replaced when it has less than this left */
const LEAF_RENEW_MS = 3600_000;
/** leaf certificates start a little in the past: a guest clock slightly behind still accepts them */
const BACKDATE_MS = 5 * 60_000;
const MAX_CACHED = 256;

export type Leaf = { certPem: string; keyPem: string; notAfter: number; context: tls.SecureContext };

class CaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaError';
  }
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // a positive INTEGER
  return b.toString('hex');
}

function rsaKeyPem(bits = 2048): string {
  return generateKeyPairSync('rsa', { modulusLength: bits }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
}

/** The CA certificate and key as PEM, made now (pure except for randomness). */
export function makeCa(commonName: string, now = Date.now()): { certPem: string; keyPem: string } {
  const keyPem = rsaKeyPem(3072);
  const key = forge.pki.privateKeyFromPem(keyPem);
  const pub = forge.pki.setRsaPublicKey(key.n, key.e);
  const cert = forge.pki.createCertificate();
  cert.publicKey = pub;
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(now - BACKDATE_MS);
  cert.validity.notAfter = new Date(now + CA_YEARS * 365 * 24 * 3600_000);
  const name = [{ name: 'commonName', value: commonName }, { name: 'organizationName', value: 'vibebox' }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, pathLenConstraint: 0, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

const CERT_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----\n?/;
const KEY_BLOCK = /-----BEGIN RSA PRIVATE KEY-----[\s\S]*?-----END RSA PRIVATE KEY-----\n?/;

export class VibeboxCa {
  readonly certPem: string;
  private readonly key: forge.pki.rsa.PrivateKey;
  private readonly caCert: forge.pki.Certificate;
  /** one key for every leaf of this process: made once, never written anywhere */
  private leafKeyPem: string | null = null;
  private readonly leafs = new Map<string, Leaf>();

  private constructor(certPem: string, keyPem: string) {
    this.certPem = certPem;
    this.key = forge.pki.privateKeyFromPem(keyPem);
    this.caCert = forge.pki.certificateFromPem(certPem);
  }

  /**
   * The CA of `dir` (e.g. ~/.vibebox/ca), made on first use. The key file must be the user's own
   * and 0600, the directory is made 0700; a file in the way that is a link is refused.
   */
  static loadOrCreate(dir: string, commonName = 'vibebox local CA'): VibeboxCa {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const dst = lstatSync(dir);
    if (!dst.isDirectory()) throw new CaError(`${dir} is not a directory`);
    const file = join(dir, 'ca.pem');
    let text = readOwnPrivate(file);
    if (text === null) {
      const { certPem, keyPem } = makeCa(commonName);
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
      const fd = openSync(tmp, 'wx', 0o600);
      try {
        writeSync(fd, keyPem + certPem);
      } finally {
        closeSync(fd);
      }
      chmodSync(tmp, 0o600);
      try {
        linkSync(tmp, file); // EEXIST: another process made it first; use theirs
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      } finally {
        unlinkSync(tmp);
      }
      text = readOwnPrivate(file);
      if (text === null) throw new CaError(`${file} vanished while it was made`);
    }
    const cert = CERT_BLOCK.exec(text)?.[0];
    const key = KEY_BLOCK.exec(text)?.[0];
    if (!cert || !key) throw new CaError(`${file} does not hold a certificate and an RSA key`);
    const ca = new VibeboxCa(cert.endsWith('\n') ? cert : `${cert}\n`, key);
    if (ca.caCert.validity.notAfter.getTime() < Date.now() + 30 * 24 * 3600_000) {
      throw new CaError(`the vibebox CA in ${file} expires within 30 days`);
    }
    return ca;
  }

  /** A certificate for `host` signed by this CA (cached; renewed an hour before it expires). */
  leaf(host: string, now = Date.now()): Leaf {
    const name = host.toLowerCase();
    const hit = this.leafs.get(name);
    if (hit && hit.notAfter - now > LEAF_RENEW_MS) return hit;
    this.leafKeyPem ??= rsaKeyPem(2048);
    const key = forge.pki.privateKeyFromPem(this.leafKeyPem);
    const cert = forge.pki.createCertificate();
    cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
    cert.serialNumber = serial();
    cert.validity.notBefore = new Date(now - BACKDATE_MS);
    cert.validity.notAfter = new Date(now + LEAF_LIFETIME_MS);
    cert.setSubject([{ name: 'commonName', value: name.slice(0, 64) }]);
    cert.setIssuer(this.caCert.subject.attributes);
    const ip = isIP(name) !== 0;
    cert.setExtensions([
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [ip ? { type: 7, ip: name } : { type: 2, value: name }] },
      { name: 'authorityKeyIdentifier', keyIdentifier: this.caCert.generateSubjectKeyIdentifier().getBytes() },
    ]);
    cert.sign(this.key, forge.md.sha256.create());
    const certPem = forge.pki.certificateToPem(cert);
    const leaf: Leaf = {
      certPem,
      keyPem: this.leafKeyPem,
      notAfter: cert.validity.notAfter.getTime(),
      // the chain the client gets: leaf then CA (the CA is also in the guest's trust store)
      context: tls.createSecureContext({ cert: certPem + this.certPem, key: this.leafKeyPem }),
    };
    if (this.leafs.size >= MAX_CACHED) this.leafs.clear();
    this.leafs.set(name, leaf);
    return leaf;
  }

  /** SHA-256 fingerprint of the CA certificate, as `vibebox explain` shows it */
  fingerprint(): string {
    return new X509Certificate(this.certPem).fingerprint256;
  }
}

/** The file's text, or null when absent; refused unless a regular file of ours with mode 0600. */
function readOwnPrivate(file: string): string | null {
  let st;
  try {
    st = lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (!st.isFile()) throw new CaError(`${file} is not a regular file`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new CaError(`${file} belongs to another user (uid ${st.uid})`);
  if ((st.mode & 0o077) !== 0) throw new CaError(`${file} may be read by others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${file}`);
  return readFileSync(file, 'utf8');
}
