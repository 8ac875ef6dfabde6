import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildArgv, qemuEscape, type VmSpec } from '../../qemu/argv.js';
import { candidates } from '../../qemu/accel.js';
import { NO_GIT_WALLS, parseTuning, virtiofsdArgv, virtiofsdCommand, virtiofsdFlavour, type VirtiofsdSpec } from '../../qemu/virtiofsd.js';
import { LAUNCHER_PY } from '../../qemu/virtiofsd-launcher.js';

const base: VmSpec = {
  name: 'vibebox-abc', accel: 'tcg', cpus: 2, memoryBytes: 2 * 1024 ** 3, kernel: '/i/vmlinuz', initrd: '/i/initrd.img',
  cmdline: 'console=ttyS0 root=/dev/vda', disk: '/p/.vibebox/disk.qcow2', backing: '/i/rootfs.qcow2', qmpSocket: '/r/qmp.sock',
  agentSocket: '/r/agent.sock', agentPortName: 'org.vibebox.agent.0', serialLog: '/p/.vibebox/serial.log', pidFile: '/r/qemu.pid',
  egressCommand: 'socat - UNIX-CONNECT:/r/egress.sock', shares: [],
};

const opt = (argv: string[], flag: string) => argv.flatMap((a, i) => (a === flag ? [argv[i + 1]!] : []));

test('direct kernel boot, no firmware reboot loop, accelerator and size', () => {
  const a = buildArgv(base);
  assert.deepEqual(opt(a, '-kernel'), ['/i/vmlinuz']);
  assert.deepEqual(opt(a, '-initrd'), ['/i/initrd.img']);
  assert.deepEqual(opt(a, '-append'), ['console=ttyS0 root=/dev/vda']);
  assert.ok(a.includes('-no-reboot'));
  // Single-threaded TCG: MTTCG let the guest run a stale int3 of its own text patching (a panic).
  assert.deepEqual(opt(a, '-accel'), ['tcg,thread=single,tb-size=128']);
  assert.deepEqual(opt(buildArgv({ ...base, accel: 'kvm' }), '-accel'), ['kvm']);
  assert.deepEqual(opt(a, '-m'), ['2048M']);
  assert.deepEqual(opt(a, '-cpu'), ['max']);
  assert.deepEqual(opt(buildArgv({ ...base, accel: 'kvm' }), '-cpu'), ['host']);
});

test('the backing file is pinned on the command line, not taken from the qcow2 header', () => {
  const bd = opt(buildArgv(base), '-blockdev');
  assert.ok(bd.some((b) => b.includes('filename=/i/rootfs.qcow2') && b.includes('read-only=on')));
  assert.ok(bd.some((b) => b.startsWith('driver=qcow2,node-name=disk') && b.includes('backing=base')));
});

test('network: restrict=on, the one guestfwd to the proxy, hostfwd bound to 127.0.0.1', () => {
  const net = opt(buildArgv({ ...base, forwards: [{ host: 8080, guest: 80 }] }), '-netdev')[0]!;
  assert.match(net, /^user,id=net0,restrict=on,/);
  assert.match(net, /guestfwd=tcp:10\.0\.2\.100:3128-cmd:socat - UNIX-CONNECT:\/r\/egress\.sock/);
  assert.match(net, /hostfwd=tcp:127\.0\.0\.1:8080-:80/);
  assert.equal(net.match(/guestfwd=/g)!.length, 1);
});

test('commas in paths are doubled so they cannot inject options', () => {
  assert.equal(qemuEscape('/a,b'), '/a,,b');
  const net = opt(buildArgv({ ...base, egressCommand: 'socat - UNIX-CONNECT:/x,y' }), '-netdev')[0]!;
  assert.match(net, /UNIX-CONNECT:\/x,,y/);
});

test('virtiofs shares get shared memory and a vhost-user device; 9p is read-only when asked', () => {
  const a = buildArgv({ ...base, shares: [{ tag: 'vb0', socket: '/r/fs0.sock', readonly: false, kind: 'virtiofs' }] });
  assert.ok(opt(a, '-object').some((o) => o.startsWith('memory-backend-memfd') && o.includes('share=on')));
  assert.ok(opt(a, '-device').some((d) => d.startsWith('vhost-user-fs-pci') && d.includes('tag=vb0')));
  const b = buildArgv({ ...base, shares: [{ tag: 'vb0', hostPath: '/h', readonly: true, kind: '9p' }] });
  assert.ok(opt(b, '-fsdev').some((f) => f.includes('path=/h') && f.includes('readonly=on')));
  assert.ok(opt(b, '-fsdev').every((f) => !f.includes('passthrough')));
  assert.equal(opt(b, '-object').length, 0);
});

test('the agent port is a virtserialport with the agreed name on a client chardev', () => {
  const a = buildArgv(base);
  assert.ok(opt(a, '-chardev').includes('socket,id=agent,path=/r/agent.sock'));
  assert.ok(opt(a, '-device').includes('virtserialport,bus=vser.0,chardev=agent,name=org.vibebox.agent.0'));
});

test('accelerator candidates: kvm then tcg on Linux with /dev/kvm, hvf on macOS, else tcg', () => {
  assert.deepEqual(candidates('linux', true), ['kvm', 'tcg']);
  assert.deepEqual(candidates('linux', false), ['tcg']);
  assert.deepEqual(candidates('darwin', false), ['hvf', 'tcg']);
  assert.deepEqual(candidates('win32', false), ['tcg']);
});

const C_FSD = { binary: '/usr/lib/qemu/virtiofsd', flavour: 'c', readonlyFlag: false } as const;
const RUST_FSD = { binary: '/usr/libexec/virtiofsd', flavour: 'rust', readonlyFlag: true } as const;
const spec = (over: Partial<VirtiofsdSpec> = {}): VirtiofsdSpec => ({
  virtiofsd: C_FSD, python: '/usr/bin/python3', socket: '/r/fs0.sock', shared: '/p', readonly: true, hide: [], git: NO_GIT_WALLS, guestUid: 1000, guestGid: 1000, ...over,
});
const unshareOf = (a: string[]) => a.slice(a.indexOf('unshare'));

test('virtiofsd runs in a user namespace mapping the host user to the guest user, read-only by bind mount', () => {
  const a = virtiofsdArgv(spec());
  assert.deepEqual(unshareOf(a).slice(0, 8), ['unshare', '--user', '--map-user=1000', '--map-group=1000', '--keep-caps', '--mount', '--propagation', 'private']);
  const script = a[a.length - 1]!;
  assert.match(script, /mount -o remount,bind,ro '\/p'/);
  assert.match(script, /exec -a 'virtiofsd@\/r\/fs0\.sock' '\/usr\/lib\/qemu\/virtiofsd' '--fd=3' '-o' 'source=\/p'/);
  const rw = virtiofsdArgv(spec({ readonly: false }));
  assert.doesNotMatch(rw[rw.length - 1]!, /remount/);
});

test('virtiofsd starts behind the python launcher, which listens on the socket and installs the seccomp filter', () => {
  const a = virtiofsdArgv(spec());
  assert.equal(a[0], '/usr/bin/python3');
  assert.equal(a[1], '-c');
  assert.equal(a[2], LAUNCHER_PY);
  assert.deepEqual(a.slice(3, 6), ['/r/fs0.sock', '--', 'unshare']);
  assert.match(LAUNCHER_PY, /0o6000/);
});

test('virtiofsd flavour is told from --help: QEMU\'s C one and the Rust one, each with its own argv', () => {
  assert.deepEqual(virtiofsdFlavour('usage: virtiofsd [options]\n    -o source=PATH             shared directory tree\n'), { flavour: 'c', readonlyFlag: false });
  assert.deepEqual(virtiofsdFlavour('Usage: virtiofsd [OPTIONS]\n      --shared-dir <shared-dir>\n      --readonly\n'), { flavour: 'rust', readonlyFlag: true });
  assert.deepEqual(virtiofsdFlavour('Usage: virtiofsd [OPTIONS]\n      --shared-dir <shared-dir>\n'), { flavour: 'rust', readonlyFlag: false });
  assert.equal(virtiofsdFlavour('something else'), null);
  assert.deepEqual(virtiofsdCommand(RUST_FSD, '/p', true), ['/usr/libexec/virtiofsd', '--fd=3', '--shared-dir=/p', '--cache=auto', '--sandbox=namespace', '--thread-pool-size=0', '--readonly']);
  assert.ok(!virtiofsdCommand(RUST_FSD, '/p', false).includes('--readonly'));
  assert.ok(!virtiofsdCommand({ ...RUST_FSD, readonlyFlag: false }, '/p', true).includes('--readonly'));
  const c = virtiofsdCommand(C_FSD, '/p', true);
  assert.deepEqual(c, ['/usr/lib/qemu/virtiofsd', '--fd=3', '-o', 'source=/p', '-o', 'cache=auto', '-o', 'no_xattr', '--thread-pool-size=0']);
  // Read-only is a bind mount for both flavours.
  assert.match(virtiofsdArgv(spec({ virtiofsd: RUST_FSD })).at(-1)!, /remount,bind,ro '\/p'.*--readonly/);
});

test('FUSE tuning under measurement: caching and readdir options only, appended after the defaults', () => {
  assert.deepEqual(parseTuning(undefined), { ok: true, options: [] });
  assert.deepEqual(parseTuning(' timeout=5, no_readdirplus ,writeback,cache=always,timeout=0.5'), { ok: true, options: ['timeout=5', 'no_readdirplus', 'writeback', 'cache=always', 'timeout=0.5'] });
  for (const bad of ['source=/', 'xattr', 'timeout=', 'cache=weird', 'allow_root', 'writeback;rm', 'readdirplus=1'])
    assert.deepEqual(parseTuning(`timeout=1,${bad}`), { ok: false, refused: bad }, bad);
  const c = virtiofsdCommand(C_FSD, '/p', false, ['timeout=5', 'no_readdirplus']);
  assert.deepEqual(c.slice(-4), ['-o', 'timeout=5', '-o', 'no_readdirplus']);
  assert.deepEqual(c.slice(0, 5), ['/usr/lib/qemu/virtiofsd', '--fd=3', '-o', 'source=/p', '-o']);
  assert.match(virtiofsdArgv(spec({ virtiofsd: C_FSD, tuning: ['writeback'] })).at(-1)!, /'-o' 'writeback'$/);
});

test('session folders in a share are found for hiding: its own and one level down', async () => {
  const { mkdtempSync, mkdirSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { statefulDirsIn } = await import('../../qemu/virtiofsd.js');
  const root = mkdtempSync(join(tmpdir(), 'vbhide-'));
  try {
    for (const d of ['.vibebox', 'a/.vibebox', 'b', 'c/d/.vibebox']) mkdirSync(join(root, d), { recursive: true });
    assert.deepEqual(statefulDirsIn(root).sort(), [join(root, '.vibebox'), join(root, 'a', '.vibebox')].sort());
    const a = virtiofsdArgv(spec({ shared: root, readonly: false, hide: statefulDirsIn(root) }));
    assert.match(a[a.length - 1]!, new RegExp(`mount -t tmpfs .* '${join(root, 'a', '.vibebox').replace(/[/.]/g, '\\$&')}'`));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('QEMU runs under its seccomp sandbox, spawn and setsid allowed for the guestfwd relay', () => {
  const sb = opt(buildArgv(base), '-sandbox');
  assert.equal(sb.length, 1);
  for (const o of ['on', 'obsolete=deny', 'resourcecontrol=deny']) assert.ok(sb[0]!.split(',').includes(o), o);
  assert.doesNotMatch(sb[0]!, /spawn=deny|elevateprivileges=deny/);
});

test('q35 without devices the guest does not need', () => {
  const m = opt(buildArgv(base), '-machine')[0]!.split(',');
  for (const o of ['vmport=off', 'smm=off', 'i8042=off', 'sata=off', 'smbus=off']) assert.ok(m.includes(o), o);
  assert.ok(buildArgv(base).includes('-nodefaults'));
});
