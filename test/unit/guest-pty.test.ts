// The guest's PTY module: pinned for the guest's CPU (never the host's build), with an identity the
// image digest can hash without the network; a tarball is taken only with its pinned sha512.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GUEST_PTY_VERSION, guestPtyIdentity, guestPtyPackages, integrityOf } from '../../images/guest-pty.js';

test('the PTY packages are the Linux prebuilt for the guest CPU, each pinned by sha512', () => {
  for (const arch of ['x64', 'arm64']) {
    const p = guestPtyPackages(arch);
    assert.deepEqual(p.map((x) => x.pkg), ['@lydell/node-pty', `@lydell/node-pty-linux-${arch}`]);
    for (const x of p) assert.match(x.integrity, /^sha512-[A-Za-z0-9+/]{86}==$/);
  }
  assert.throws(() => guestPtyPackages('ia32'), /no prebuilt PTY module for a ia32 guest/);
  // The identity changes with the CPU and names the version: a new pin is a new image.
  assert.notEqual(guestPtyIdentity('x64'), guestPtyIdentity('arm64'));
  assert.ok(guestPtyIdentity('x64').includes(GUEST_PTY_VERSION));
});

test('integrityOf is npm\'s form: sha512, base64', () => {
  assert.equal(integrityOf(Buffer.from('')), 'sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==');
});
