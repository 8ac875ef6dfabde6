import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import tls from 'node:tls';
import { LEAF_LIFETIME_MS, VibeboxCa } from '../../proxy/ca.js';

const dir = mkdtempSync(join(tmpdir(), 'vibebox-ca-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('the vibebox CA', () => {
  it('is made on first use with a 0600 key file in a 0700 directory, and loaded the same after', () => {
    const caDir = join(dir, 'ca');
    const a = VibeboxCa.loadOrCreate(caDir);
    assert.equal(statSync(join(caDir, 'ca.pem')).mode & 0o777, 0o600);
    assert.equal(statSync(caDir).mode & 0o777, 0o700);
    const b = VibeboxCa.loadOrCreate(caDir);
    assert.equal(a.certPem, b.certPem);
    const x = new X509Certificate(a.certPem);
    assert.equal(x.ca, true);
    assert.ok(x.verify(x.publicKey), 'self-signed');
    assert.ok(readFileSync(join(caDir, 'ca.pem'), 'utf8').includes('PRIVATE KEY'));
    assert.ok(!a.certPem.includes('PRIVATE KEY'), 'the certificate (what the guest gets) carries no key');
  });

  it('refuses a key file others may read', () => {
    const caDir = join(dir, 'loose');
    VibeboxCa.loadOrCreate(caDir);
    chmodSync(join(caDir, 'ca.pem'), 0o644);
    assert.throws(() => VibeboxCa.loadOrCreate(caDir), /may be read by others/);
  });

  it('refuses a file that holds no key', () => {
    const caDir = join(dir, 'nokey');
    VibeboxCa.loadOrCreate(caDir);
    writeFileSync(join(caDir, 'ca.pem'), 'nothing', { mode: 0o600 });
    assert.throws(() => VibeboxCa.loadOrCreate(caDir), /does not hold/);
  });

  it('issues short-lived leaf certificates that chain to it, cached per host', async () => {
    const ca = VibeboxCa.loadOrCreate(join(dir, 'ca'));
    const leaf = ca.leaf('api.anthropic.com');
    const x = new X509Certificate(leaf.certPem);
    assert.ok(x.verify(new X509Certificate(ca.certPem).publicKey), 'signed by the CA');
    assert.equal(x.checkIssued(new X509Certificate(ca.certPem)), true);
    assert.equal(x.checkHost('api.anthropic.com'), 'api.anthropic.com');
    assert.equal(x.checkHost('evil.example'), undefined);
    assert.equal(x.ca, false);
    const life = Date.parse(x.validTo) - Date.now();
    assert.ok(life <= LEAF_LIFETIME_MS && life > LEAF_LIFETIME_MS - 120_000, `a day, not more (${life})`);
    assert.equal(ca.leaf('api.anthropic.com'), leaf, 'cached');
    assert.notEqual(ca.leaf('api.openai.com').certPem, leaf.certPem);
    // renewed when less than an hour is left
    const other = VibeboxCa.loadOrCreate(join(dir, 'ca'));
    const first = other.leaf('api.anthropic.com');
    assert.notEqual(other.leaf('api.anthropic.com', Date.now() + LEAF_LIFETIME_MS - 30 * 60_000), first);

    // a real TLS handshake verifies with the CA as the only trust anchor
    const server = tls.createServer({ SNICallback: (name, cb) => cb(null, ca.leaf(name).context) }, (s) => s.end('hi'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    after(() => server.close());
    const port = (server.address() as { port: number }).port;
    const got = await new Promise<string>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, servername: 'api.anthropic.com', ca: ca.certPem }, () => undefined);
      let t = '';
      c.on('data', (d) => (t += d));
      c.on('end', () => resolve(t));
      c.on('error', reject);
    });
    assert.equal(got, 'hi');
    // and fails against the normal trust store (the CA is trusted only where it is installed)
    await assert.rejects(
      new Promise((resolve, reject) => {
        const c = tls.connect({ host: '127.0.0.1', port, servername: 'api.anthropic.com' }, () => resolve(undefined));
        c.on('error', reject);
      }),
      /self.signed|unable to get local issuer|self-signed/i,
    );
  });
});
