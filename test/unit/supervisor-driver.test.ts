// The supervisor's one way to a hypervisor: driver-factory.ts builds the QEMU driver behind the
// VmDriver interface, whose probe() and resumeKey() replace the QEMU facts the supervisor read itself.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDriver, type DriverSettings } from '../../src/supervisor/driver-factory.js';
import { findPython, findVirtiofsd } from '../../qemu/virtiofsd.js';
import { qemuBinary } from '../../qemu/accel.js';
import { which } from '../../qemu/which.js';
import type { VmRequest } from '../../qemu/driver.js';

const settings = (dir: string, env: NodeJS.ProcessEnv = {}): DriverSettings => ({
  runDir: join(dir, 'run'),
  accelCache: join(dir, 'accel.json'),
  guestUid: 1000,
  guestGid: 1000,
  log: () => undefined,
  output: () => undefined,
  env,
});

const req: VmRequest = {
  name: 'vibebox-abc', cpus: 2, memoryBytes: 2 * 1024 ** 3, kernel: '/i/vmlinuz', initrd: '/i/initrd.img', cmdline: 'console=ttyS0',
  disk: '/p/disk.qcow2', backing: '/i/rootfs.qcow2', agentSocket: '/r/agent.sock', agentPortName: 'org.vibebox.agent.0', egressSocket: '/r/egress.sock', serialLog: '/p/serial.log',
};

const hostHasParts = findVirtiofsd() !== null && findPython() !== null;

describe('the driver factory and the VmDriver facts', { skip: hostHasParts ? false : 'virtiofsd or python3 is not installed' }, () => {
  it('refuses a virtiofsd tuning option that is not a caching one, naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vb-drv-'));
    assert.throws(() => createDriver(settings(dir, { VIBEBOX_VIRTIOFSD_OPTS: 'sandbox=none' })), (e: Error & { code?: string }) => e.code === 'E_USAGE' && e.message.includes('"sandbox=none"'));
    rmSync(dir, { recursive: true, force: true });
  });

  it('probe() honours a forced accelerator without booting anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vb-drv-'));
    const before = process.env['VIBEBOX_ACCEL'];
    process.env['VIBEBOX_ACCEL'] = 'tcg';
    try {
      assert.deepEqual(await createDriver(settings(dir)).probe('/nonexistent/vmlinuz'), { accel: 'tcg', tried: [] });
    } finally {
      if (before === undefined) delete process.env['VIBEBOX_ACCEL'];
      else process.env['VIBEBOX_ACCEL'] = before;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('resumeKey() names the QEMU binary and hashes the command line: the same VM, the same key; another size, another argv', { skip: which(qemuBinary()) ? false : 'QEMU is not installed' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'vb-drv-'));
    const d = createDriver(settings(dir));
    const k = d.resumeKey(req);
    assert.match(k.qemu, /qemu-system-[a-z0-9_]+:\d+:\d+$/);
    assert.match(k.argv, /^[0-9a-f]{64}$/);
    assert.deepEqual(d.resumeKey(req), k);
    assert.equal(d.resumeKey({ ...req, cpus: 4 }).qemu, k.qemu);
    assert.notEqual(d.resumeKey({ ...req, cpus: 4 }).argv, k.argv);
    rmSync(dir, { recursive: true, force: true });
  });
});
