// The VM driver against real QEMU: the QMP client, the accelerator probe (which must fall back to
// TCG by itself where KVM exists but hangs, as on the CI machine), the overlay disk and its check.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpClient } from '../../qemu/qmp.js';
import { bootsUnder, candidates, probeAccel, qemuBinary } from '../../qemu/accel.js';
import { checkDisk, createOverlay } from '../../qemu/disk.js';
import { findImage, listImages } from '../../images/build.js';
import { ensureCachedImage, imageCacheHome } from '../helpers/vm.js';

describe('QEMU driver', () => {
  let dir: string;
  let kernel: string;
  let rootfs: string;
  before(async () => {
    ensureCachedImage();
    const imgs = await listImages(imageCacheHome());
    const img = (await findImage('default', imgs[imgs.length - 1]!.digest, imageCacheHome()))!;
    kernel = img.kernel;
    rootfs = img.rootfs;
    dir = mkdtempSync(join(tmpdir(), 'vbq-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('talks QMP: capabilities, query-status, quit', async () => {
    const sock = join(dir, 'qmp.sock');
    const q: ChildProcess = spawn(qemuBinary(), ['-machine', 'none', '-nodefaults', '-display', 'none', '-S', '-qmp', `unix:${sock},server=on,wait=off`], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => q.once('exit', (c) => r(c)));
    try {
      for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
      const c = await QmpClient.connect(sock);
      const st = (await c.execute('query-status')) as { status: string; running: boolean };
      assert.equal(st.running, false);
      assert.equal(st.status, 'prelaunch');
      await assert.rejects(c.execute('no-such-command'), /QMP/);
      await c.execute('quit');
      assert.equal(await exited, 0);
      c.close();
    } finally {
      q.kill('SIGKILL');
    }
  });

  it('boots the kernel under TCG to its panic (the probe works at all)', async () => {
    const r = await bootsUnder('tcg', kernel, 120_000);
    assert.equal(r.ok, true, r.detail);
  });

  it('probes the accelerator by booting, and falls back to TCG when the candidate does not boot', async () => {
    const saved = process.env['VIBEBOX_ACCEL'];
    delete process.env['VIBEBOX_ACCEL'];
    try {
      const cache = join(dir, 'accel.json');
      const r = await probeAccel(kernel, cache, { timeoutMs: 8000 });
      const list = candidates();
      assert.ok(list.includes(r.accel));
      if (r.accel !== 'tcg') {
        // Chosen only because a real boot under it succeeded.
        assert.ok(r.tried.some((t) => t.accel === r.accel && t.ok));
      } else if (list[0] !== 'tcg') {
        // e.g. /dev/kvm present but hanging: the probe tried it and said why it fell back.
        assert.ok(r.tried.length > 0 && r.tried.every((t) => !t.ok), JSON.stringify(r.tried));
      }
      // The answer is cached: a second probe does not boot again.
      const again = await probeAccel(kernel, cache);
      assert.equal(again.accel, r.accel);
      assert.equal(again.tried.length, 0);
    } finally {
      if (saved !== undefined) process.env['VIBEBOX_ACCEL'] = saved;
    }
  });

  it('creates a copy-on-write overlay that checks clean', async () => {
    const disk = join(dir, 'disk.qcow2');
    await createOverlay(disk, rootfs, 20 * 1024 ** 3);
    const r = await checkDisk(disk, rootfs);
    assert.equal(r.ok, true, r.output);
    assert.equal(r.corruptions, 0);
  });
});
