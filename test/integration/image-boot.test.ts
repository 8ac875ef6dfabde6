// Builds (or reuses) the default image and boots it under TCG with direct kernel boot: the guest
// init prints its marker on the serial console, the guest agent says hello over virtio-serial,
// and the guest kernel is not the host's.
//
// Image cache: VIBEBOX_IMAGE_CACHE names a vibebox home whose images/ (and cache/apt) are reused
// across test files and CI runs; without it, one fixed dir under the OS temp dir is shared by the
// test files of a run. Images are keyed by digest, so reuse is always safe.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureImage, kernelCmdline, type ImageInfo } from '../../images/build.js';
import { packageRoot } from '../../images/recipe.js';
import { AgentMessage, FrameDecoder, Kind } from '../../guest/protocol.js';

const MARKER = 'vibebox-init: agent starting';
const cacheHome = process.env['VIBEBOX_IMAGE_CACHE'] || join(tmpdir(), 'vibebox-image-cache');
const agentBuilt = existsSync(join(packageRoot(), 'dist', 'guest-agent.js'));
const skip = agentBuilt ? false : 'dist/guest-agent.js is missing (run npm run build)';

let image: ImageInfo;
let work: string;
let qemu: ChildProcess | undefined;
let agentSock: Socket | undefined;
const agentBytes: Buffer[] = [];
let qemuStarted = 0;

before(async () => {
  if (skip) return;
  const t0 = Date.now();
  image = await ensureImage({ home: cacheHome, onProgress: (l) => process.stderr.write(`image: ${l}\n`) });
  process.stderr.write(`image ${image.name}/${image.digest} ready in ${((Date.now() - t0) / 1000).toFixed(1)}s\n`);
  work = mkdtempSync(join(tmpdir(), 'vibebox-boot-'));
});

after(async () => {
  agentSock?.destroy();
  if (qemu && qemu.exitCode === null && qemu.signalCode === null) {
    const exited = new Promise((r) => qemu!.once('exit', r));
    qemu.kill('SIGKILL');
    await exited;
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (qemu && qemu.exitCode !== null) throw new Error(`QEMU exited (${qemu.exitCode}) while waiting for ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('the image boots under TCG to the guest init marker', { skip, timeout: 600_000 }, async () => {
  const disk = join(work, 'disk.qcow2');
  const serial = join(work, 'serial.log');
  const sock = join(work, 'agent.sock');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image.rootfs, disk]);
  qemuStarted = Date.now();
  qemu = spawn(
    'qemu-system-x86_64',
    [
      '-accel', 'tcg', '-M', 'q35', '-m', '1024', '-smp', '2',
      '-nographic', '-nodefaults', '-no-reboot', '-no-user-config',
      '-kernel', image.kernel, '-initrd', image.initrd, '-append', kernelCmdline(image.manifest),
      '-drive', `file=${disk},if=virtio,format=qcow2`,
      '-serial', `file:${serial}`,
      '-device', 'virtio-serial-pci',
      '-chardev', `socket,id=agent,path=${sock},server=on,wait=off`,
      '-device', `virtserialport,chardev=agent,name=${image.manifest.agentPort}`,
      '-netdev', 'user,id=n0,restrict=on',
      '-device', 'virtio-net-pci,netdev=n0,romfile=',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let qemuErr = '';
  qemu.stderr?.on('data', (d: Buffer) => (qemuErr += d.toString()));
  await waitFor('the agent socket', 10_000, () => (existsSync(sock) ? true : undefined));
  agentSock = connect(sock);
  agentSock.on('data', (d: Buffer) => agentBytes.push(d));
  agentSock.on('error', () => undefined);

  try {
    await waitFor('the init marker on the serial console', 180_000, () =>
      existsSync(serial) && readFileSync(serial, 'latin1').includes(MARKER) ? true : undefined,
    );
  } catch (e) {
    const log = existsSync(serial) ? readFileSync(serial, 'latin1').slice(-3000) : '(no serial log)';
    throw new Error(`${(e as Error).message}\n--- serial.log (tail) ---\n${log}\n--- qemu stderr ---\n${qemuErr}`);
  }
  process.stderr.write(`QEMU start → init marker: ${((Date.now() - qemuStarted) / 1000).toFixed(1)}s (TCG)\n`);
  assert.notEqual(image.manifest.kernelVersion, release(), 'the guest kernel is not the host kernel');
});

test('the guest agent says hello over virtio-serial with the guest kernel', { skip, timeout: 300_000 }, async () => {
  assert.ok(qemu, 'the boot test ran');
  const decoder = new FrameDecoder();
  let seen = 0;
  const hello = await waitFor('the agent hello', 180_000, () => {
    while (seen < agentBytes.length) {
      for (const f of decoder.push(agentBytes[seen++]!)) {
        if (f.stream !== 0 || f.kind !== Kind.control) continue;
        const msg = AgentMessage.parse(JSON.parse(f.payload.toString('utf8')));
        if (msg.type === 'hello') return msg;
      }
    }
    return undefined;
  });
  process.stderr.write(`QEMU start → agent hello: ${((Date.now() - qemuStarted) / 1000).toFixed(1)}s (TCG)\n`);
  assert.equal(hello.kernel, image.manifest.kernelVersion, 'uname -r in the guest is the image kernel');
  assert.notEqual(hello.kernel, release(), 'uname -r in the guest differs from the host');
});
