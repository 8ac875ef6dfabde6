// The host's CA certificates into the guest: the host's collection (src/supervisor/host-cas.ts),
// the strict check on receipt and the guest's install (guest/agent/host-cas.ts) into a temporary
// root on the real filesystem. Certificates are real ones, generated with openssl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_CA_PEM_BYTES, parseReceivedBundle, pemBodies, renderBundle } from '../../guest/ca-certs.js';
import { HOST_CA_FILE, LOCAL_CA_DIR, SYSTEM_BUNDLE, installHostCas } from '../../guest/agent/host-cas.js';
import { caSourceFiles, hostCaBundle } from '../../src/supervisor/host-cas.js';
import { HostMessage } from '../../guest/protocol.js';

const work = mkdtempSync(join(tmpdir(), 'vibebox-cas-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

function makeCert(n: number): string {
  const key = join(work, `k${n}.pem`);
  const crt = join(work, `c${n}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', `/CN=vibebox test CA ${n}`], { stdio: 'ignore' });
  return readFileSync(crt, 'utf8');
}
const certs = Array.from({ length: 6 }, (_, i) => makeCert(i));
const bodies = certs.map((c) => pemBodies(c)[0]!);

test('pemBodies: certificates only, whitespace-free, first occurrence kept; comments ignored', () => {
  const text = `# a comment\n${certs[0]}\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n${certs[1]}${certs[0]}`;
  assert.deepEqual(pemBodies(text), [bodies[0], bodies[1]]);
  assert.ok(!bodies[0]!.includes('\n'));
});

test('a received bundle must be PEM certificates only, within the caps', () => {
  assert.deepEqual(parseReceivedBundle(renderBundle(bodies)), bodies);
  assert.deepEqual(parseReceivedBundle(''), []);
  assert.throws(() => parseReceivedBundle(`${certs[0]}rm -rf /\n`), /other than PEM certificates/);
  assert.throws(() => parseReceivedBundle(`-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`), /other than PEM/);
  assert.throws(() => parseReceivedBundle(`${certs[0]}-----BEGIN CERTIFICATE-----\nA$B\n-----END CERTIFICATE-----\n`), /other than PEM|not base64/);
  assert.throws(() => parseReceivedBundle(`-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n`), /no valid|not base64/);
  assert.throws(() => parseReceivedBundle(certs[0]!.repeat(Math.ceil(MAX_CA_PEM_BYTES / certs[0]!.length) + 1)), /larger than/);
  // The protocol caps the field too, before the agent sees it.
  const setup = { type: 'setup', mounts: [], env: {}, cas: 'x'.repeat(MAX_CA_PEM_BYTES + 1) };
  assert.equal(HostMessage.safeParse(setup).success, false);
  assert.equal(HostMessage.safeParse({ ...setup, cas: certs[0] }).success, true);
  assert.equal(HostMessage.safeParse({ type: 'setup', mounts: [], env: {} }).success, true, 'cas is optional');
});

function guestRoot(own: string[]): string {
  const root = mkdtempSync(join(work, 'root-'));
  mkdirSync(join(root, '/etc/ssl/certs'), { recursive: true });
  writeFileSync(join(root, SYSTEM_BUNDLE), own.join(''));
  return root;
}
const bundleOf = (root: string) => pemBodies(readFileSync(join(root, SYSTEM_BUNDLE), 'utf8'));
const localOf = (root: string) => readdirSync(join(root, LOCAL_CA_DIR)).sort();

test('the guest adds what its bundle lacks, keeps it on an unchanged boot and drops what the host dropped', () => {
  const root = guestRoot([certs[0]!, certs[1]!, certs[2]!]);
  // The host sends a whole bundle: two the guest has, two it lacks.
  const env = installHostCas(renderBundle([bodies[1]!, bodies[2]!, bodies[3]!, bodies[4]!]), root);
  assert.deepEqual(env, { NODE_EXTRA_CA_CERTS: HOST_CA_FILE });
  assert.deepEqual(bundleOf(root), [bodies[0], bodies[1], bodies[2], bodies[3], bodies[4]]);
  assert.equal(localOf(root).length, 2, 'one file per extra certificate, for update-ca-certificates');
  assert.deepEqual(pemBodies(readFileSync(join(root, HOST_CA_FILE), 'utf8')), [bodies[3], bodies[4]], 'Node gets only the extras');
  for (const f of [join(root, SYSTEM_BUNDLE), join(root, HOST_CA_FILE), ...localOf(root).map((n) => join(root, LOCAL_CA_DIR, n))]) {
    assert.equal(statSync(f).mode & 0o777, 0o644, `${f} is 0644`);
  }

  // Next boot, same host: nothing is rewritten.
  const ino = statSync(join(root, SYSTEM_BUNDLE)).ino;
  const inoNode = statSync(join(root, HOST_CA_FILE)).ino;
  installHostCas(renderBundle([bodies[3]!, bodies[4]!]), root);
  assert.equal(statSync(join(root, SYSTEM_BUNDLE)).ino, ino);
  assert.equal(statSync(join(root, HOST_CA_FILE)).ino, inoNode);

  // Something rewrote the bundle since (an apt run, root in the guest): the next boot repairs it.
  writeFileSync(join(root, SYSTEM_BUNDLE), [certs[0]!, certs[1]!, certs[2]!].join(''));
  installHostCas(renderBundle([bodies[3]!, bodies[4]!]), root);
  assert.deepEqual(bundleOf(root), [bodies[0], bodies[1], bodies[2], bodies[3], bodies[4]]);

  // The host replaced one CA: the old one leaves the bundle, the new one joins.
  installHostCas(renderBundle([bodies[4]!, bodies[5]!]), root);
  assert.deepEqual(bundleOf(root), [bodies[0], bodies[1], bodies[2], bodies[4], bodies[5]]);
  assert.equal(localOf(root).length, 2);

  // A host with no extra CAs (or an older supervisor): back to Debian's own bundle.
  installHostCas(undefined, root);
  assert.deepEqual(bundleOf(root), [bodies[0], bodies[1], bodies[2]]);
  assert.deepEqual(localOf(root), []);
  assert.equal(readFileSync(join(root, HOST_CA_FILE), 'utf8'), '');
});

test('a block that is base64 but not a certificate fails the install and changes nothing', () => {
  const root = guestRoot([certs[0]!]);
  const before = readFileSync(join(root, SYSTEM_BUNDLE), 'utf8');
  const bogus = renderBundle([Buffer.from('not a certificate at all').toString('base64')]);
  assert.throws(() => installHostCas(`${certs[1]}${bogus}`, root), /not an X\.509 certificate/);
  assert.equal(readFileSync(join(root, SYSTEM_BUNDLE), 'utf8'), before);
});

test('the host collects NODE_EXTRA_CA_CERTS, SSL_CERT_FILE and anchor dirs, deduplicated, skipping junk', () => {
  const dir = mkdtempSync(join(work, 'host-'));
  const anchors = join(dir, 'anchors');
  mkdirSync(join(anchors, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'node.pem'), `${certs[0]}${certs[1]}`);
  writeFileSync(join(dir, 'ssl.pem'), `# comment\n${certs[1]}${certs[2]}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`);
  writeFileSync(join(anchors, 'sub', 'corp.crt'), certs[3]!);
  writeFileSync(join(anchors, 'README'), 'not a cert');
  const env = { NODE_EXTRA_CA_CERTS: join(dir, 'node.pem'), SSL_CERT_FILE: join(dir, 'ssl.pem') };
  assert.deepEqual(caSourceFiles(env, [anchors, join(dir, 'missing')]), [join(dir, 'node.pem'), join(dir, 'ssl.pem'), join(anchors, 'sub', 'corp.crt')]);
  const pem = hostCaBundle(env, [anchors]);
  assert.ok(pem);
  assert.deepEqual(parseReceivedBundle(pem), [bodies[0], bodies[1], bodies[2], bodies[3]]);
  assert.equal(hostCaBundle({}, [join(dir, 'missing')]), undefined, 'no sources, no field');
});
