// Suspend and resume, the pure parts: QEMU's command line for a save and a resume,
// when a saved state may be resumed, what the guest unmounts first.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildArgv, type VmSpec } from '../../qemu/argv.js';
import { incomingUri, shQuote, staleReason, type DiskStamp, type ResumeKey, type SavedStateRecord } from '../../qemu/saved-state.js';
import { mountsToUndo } from '../../guest/agent/suspend.js';

const base: VmSpec = {
  name: 'vibebox-abc', accel: 'tcg', cpus: 2, memoryBytes: 2 * 1024 ** 3, kernel: '/i/vmlinuz', initrd: '/i/initrd.img',
  cmdline: 'console=ttyS0', disk: '/p/disk.qcow2', backing: '/i/rootfs.qcow2', qmpSocket: '/r/qmp.sock', agentSocket: '/r/agent.sock',
  agentPortName: 'org.vibebox.agent.0', serialLog: '/p/serial.log', pidFile: '/r/qemu.pid',
  shares: [{ tag: 'vb0', socket: '/r/fs0.sock', readonly: false, kind: 'virtiofs' }, { tag: 'vb1', socket: '/r/fs1.sock', readonly: true, kind: 'virtiofs' }],
};
const opt = (argv: string[], flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));

test('each virtiofs share sits on a root port of its own, so it can be unplugged and plugged again', () => {
  const dev = opt(buildArgv(base), '-device');
  assert.ok(dev.includes('pcie-root-port,id=vbport0,chassis=1'));
  assert.ok(dev.includes('pcie-root-port,id=vbport1,chassis=2'));
  assert.ok(dev.some((d) => d.startsWith('vhost-user-fs-pci,id=vbfs0,chardev=fs0,tag=vb0') && d.endsWith(',bus=vbport0')));
  assert.ok(dev.some((d) => d.startsWith('vhost-user-fs-pci,id=vbfs1,chardev=fs1,tag=vb1') && d.endsWith(',bus=vbport1')));
});

test('a resume starts without the share devices but with their ports, waiting for the state', () => {
  const a = buildArgv({ ...base, withoutShareDevices: true, incoming: 'defer' });
  const dev = opt(a, '-device');
  assert.ok(dev.includes('pcie-root-port,id=vbport0,chassis=1'));
  assert.ok(!dev.some((d) => d.startsWith('vhost-user-fs-pci')));
  assert.ok(!opt(a, '-chardev').some((c) => c.startsWith('socket,id=fs')));
  assert.deepEqual(opt(a, '-incoming'), ['defer']);
  assert.deepEqual(opt(buildArgv(base), '-incoming'), []);
});

test('guest RAM in a file (shared with virtiofsd) when asked, a memfd otherwise', () => {
  assert.ok(opt(buildArgv({ ...base, memoryFile: '/run/user/1/vb,x.ram' }), '-object').includes('memory-backend-file,id=mem,size=2048M,mem-path=/run/user/1/vb,,x.ram,share=on'));
  assert.ok(opt(buildArgv(base), '-object')[0]!.startsWith('memory-backend-memfd,'));
});

const key: ResumeKey = { vibebox: '0.1.0', protocol: 1, qemu: '/usr/bin/qemu:1:2', image: 'abc', config: 'c1', argv: 'a1' };
const disk: DiskStamp = { size: 4096, mtimeNs: '1', ino: '7', head: 'h' };
const rec: SavedStateRecord = {
  schema: 1, key, disk, bytes: 100, sha256: 'a'.repeat(64), ram: { bytes: 200, sha256: 'b'.repeat(64) }, nextExec: 5, savedAt: '2026-11-29T00:00:00Z', saveMs: 1,
};

test('a saved state resumes only when everything it was saved against matches', () => {
  assert.equal(staleReason(rec, key, disk, 100, 200), null);
  assert.equal(staleReason(rec, { ...key, image: 'def' }, disk, 100, 200), 'the image changed');
  assert.equal(staleReason(rec, { ...key, config: 'c2' }, disk, 100, 200), 'vibebox.toml changed');
  assert.equal(staleReason(rec, { ...key, qemu: '/usr/bin/qemu:1:3' }, disk, 100, 200), 'QEMU changed');
  assert.equal(staleReason(rec, { ...key, vibebox: '0.2.0' }, disk, 100, 200), 'vibebox was updated');
  assert.equal(staleReason(rec, { ...key, protocol: 2 }, disk, 100, 200), 'the guest agent protocol changed');
  assert.equal(staleReason(rec, { ...key, argv: 'a2' }, disk, 100, 200), 'the VM settings changed');
  assert.equal(staleReason(rec, key, { ...disk, mtimeNs: '2' }, 100, 200), 'the disk changed after the save');
  assert.equal(staleReason(rec, key, { ...disk, head: 'x' }, 100, 200), 'the disk changed after the save');
  assert.equal(staleReason(rec, key, null, 100, 200), 'the disk is gone');
  assert.equal(staleReason(rec, key, disk, null, 200), 'the state file is gone');
  assert.equal(staleReason(rec, key, disk, 99, 200), 'the state file changed size');
  assert.equal(staleReason(rec, key, disk, 100, null), 'the RAM file is gone');
  assert.equal(staleReason({ ...rec, ram: null }, key, disk, 100, null), null);
});

test('the incoming URI quotes the path for the shell QEMU runs it with', () => {
  assert.equal(shQuote("/p/it's here"), `'/p/it'\\''s here'`);
  assert.equal(incomingUri('/p/.vibebox/saved-state'), `exec:zstd -dcq -- '/p/.vibebox/saved-state'`);
});

test('the guest unmounts everything under its shares, innermost and latest first', () => {
  const mounts = [
    '/dev/vda / ext4 rw 0 0',
    'vb0 /workspace virtiofs rw 0 0',
    '/dev/vda /workspace/node_modules ext4 rw 0 0',
    'vb1 /run/vibebox/mounts/vb1 virtiofs ro 0 0',
    'vb1 /home/vibe/.gitconfig virtiofs ro 0 0',
    'vb2 /work\\040space2 virtiofs rw 0 0',
    'vb0 /workspace virtiofs rw 0 0',
    'tmpfs /workspacefoo tmpfs rw 0 0',
  ].join('\n');
  assert.deepEqual(mountsToUndo(mounts, ['/workspace', '/home/vibe/.gitconfig', '/run/vibebox/mounts', '/work space2']), [
    '/run/vibebox/mounts/vb1',
    '/home/vibe/.gitconfig',
    '/workspace/node_modules',
    '/workspace',
    '/work space2',
    '/workspace',
  ]);
});
