// `vibebox doctor`: what this machine has, what is missing, and how to install it. The host
// facts are read here, as the real user (a check that only root passes is no check); what they
// mean is decided in doctor-verdicts.ts.
import { accessSync, constants, readFileSync, mkdirSync, statSync, statfsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { execa } from 'execa';
import { homePaths } from '../paths.js';
import { buildWorkRoot } from '../../images/build.js';
import { cachedAccel, candidates, hasKvmDevice, qemuBinary } from '../../qemu/accel.js';
import { virtiofsdBinary } from '../../qemu/virtiofsd.js';
import { table } from './format.js';
import { check, freeSubidRange, kvmVerdict, parseSubids, reachVerdict, subidVerdict, uidmapVerdict, usernsVerdict, type Check, type KvmFacts } from './doctor-verdicts.js';

const PROBE_TIMEOUT_MS = 10_000;

async function version(cmd: string, args: string[] = ['--version']): Promise<string | null> {
  const r = await execa(cmd, args, { reject: false, timeout: 10_000 });
  if (r.failed && r.exitCode === undefined) return null;
  if (r.exitCode !== 0 && !r.stdout) return null;
  return (r.stdout || r.stderr).split('\n')[0]?.trim() ?? '';
}

export async function runChecks(): Promise<Check[]> {
  const checks: Check[] = [];
  const major = Number(process.versions.node.split('.')[0]);
  checks.push(check('node', major >= 20 ? 'ok' : 'missing', process.version, 'install Node.js 20 or newer'));
  const q = await version(qemuBinary());
  checks.push(check('qemu-system', q ? 'ok' : 'missing', q ?? 'missing', 'sudo apt-get install qemu-system-x86 (macOS: brew install qemu)'));
  const img = await version('qemu-img');
  checks.push(check('qemu-img', img ? 'ok' : 'missing', img ?? 'missing', 'sudo apt-get install qemu-utils'));
  checks.push(kvmVerdict(await kvmFacts()));
  const list = candidates();
  const probed = cachedAccel(join(homePaths().home, 'accel.json'), list);
  const forced = process.env['VIBEBOX_ACCEL'];
  const accel = forced ?? probed ?? list[0]!;
  const note = forced
    ? 'set by VIBEBOX_ACCEL'
    : probed
      ? probed === 'tcg' && list[0] !== 'tcg' ? `${list[0]} did not boot a test guest: using tcg (software emulation, slow)` : 'verified by a test boot'
      : process.platform === 'linux'
        ? hasKvmDevice() ? 'verified by a test boot on the first start (falls back to tcg if it hangs)' : 'software emulation, slow (see kvm)'
        : '';
  checks.push(check('accelerator', 'ok', `${accel}${note ? ` — ${note}` : ''}`));
  const fsd = virtiofsdBinary();
  checks.push(check('virtiofsd', fsd ? 'ok' : 'missing', fsd ?? 'missing (sessions refuse to start: E_VIRTIOFSD_MISSING)', 'sudo apt-get install virtiofsd (Debian 13, Ubuntu 24.04) or qemu-system-common (Debian 12)'));
  const py = await version('python3');
  checks.push(check('python3', py ? 'ok' : 'missing', py ?? 'missing (it installs the seccomp filter virtiofsd runs under)', 'sudo apt-get install python3'));
  const socat = await version('socat', ['-V']);
  checks.push(check('socat', socat ? 'ok' : 'missing', socat ? socat.replace(/^socat by .*$/, 'present') : 'missing', 'sudo apt-get install socat'));
  const mm = await version('mmdebstrap');
  checks.push(check('mmdebstrap', mm ? 'ok' : 'missing', mm ?? 'missing', 'sudo apt-get install mmdebstrap (builds the guest image)'));
  const home = homePaths().home;
  mkdirSync(home, { recursive: true });
  checks.push(...(await userChecks(mm !== null)));
  const st = statfsSync(home);
  const free = (st.bavail * st.bsize) / 1024 ** 3;
  checks.push(check('disk space', free >= 5 ? 'ok' : 'missing', `${free.toFixed(1)} GiB free in ${home}`, 'free at least 5 GiB (the image takes ~1.5 GiB, each session grows with use)'));
  return checks;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Run a short command as this user; ok when it exits 0 within the timeout. */
async function tries(cmd: string, args: string[]): Promise<{ ok: boolean; detail: string }> {
  const r = await execa(cmd, args, { reject: false, timeout: PROBE_TIMEOUT_MS, stdin: 'ignore', killSignal: 'SIGKILL' });
  if (r.exitCode === 0) return { ok: true, detail: '' };
  if (r.timedOut) return { ok: false, detail: `no answer within ${PROBE_TIMEOUT_MS} ms` };
  const err = `${r.stderr}`.split('\n').find((l) => l.trim()) ?? (r.failed && r.exitCode === undefined ? `${cmd} could not run` : `exit ${r.exitCode}`);
  return { ok: false, detail: err.trim().slice(0, 200) };
}

function onPath(tool: string): { path: string; setuidRoot: boolean } | null {
  for (const dir of (process.env['PATH'] ?? '/usr/bin:/bin').split(delimiter).concat(['/usr/bin', '/usr/sbin'])) {
    const p = join(dir, tool);
    try {
      accessSync(p, constants.X_OK);
      const st = statSync(p);
      return { path: p, setuidRoot: st.uid === 0 && (st.mode & 0o4000) !== 0 };
    } catch {
      /* not here */
    }
  }
  return null;
}

/** What a run as this user needs beyond the tools: user namespaces, subordinate ids, uidmap. */
async function userChecks(mmdebstrap: boolean): Promise<Check[]> {
  const uid = process.getuid?.() ?? 0;
  if (process.platform !== 'linux') return [];
  const user = { name: userInfo().username, uid };
  const userns = usernsVerdict({
    unprivilegedClone: readOrNull('/proc/sys/kernel/unprivileged_userns_clone'),
    maxUserNamespaces: readOrNull('/proc/sys/user/max_user_namespaces'),
    apparmorRestrict: readOrNull('/proc/sys/kernel/apparmor_restrict_unprivileged_userns'),
    probe: await tries('unshare', ['--user', '--map-root-user', 'true']),
    uid,
  });
  const subuidText = readOrNull('/etc/subuid');
  const subgidText = readOrNull('/etc/subgid');
  const range = freeSubidRange([parseSubids(subuidText ?? ''), parseSubids(subgidText ?? '')]);
  const subuid = subidVerdict('subuid', subuidText, user, range);
  const subgid = subidVerdict('subgid', subgidText, user, range);
  const newuidmap = onPath('newuidmap');
  const newgidmap = onPath('newgidmap');
  // The mapping mmdebstrap's unshare mode makes (newuidmap/newgidmap with the user's ranges),
  // tried only when everything it depends on looks right, so its failure names the real cause.
  const probe = uid !== 0 && userns.ok && subuid.ok && subgid.ok && newuidmap && newgidmap
    ? await tries('unshare', ['--user', '--map-root-user', '--map-auto', 'true'])
    : null;
  const uidmap = uidmapVerdict({ uid, newuidmap, newgidmap, probe });
  return [userns, subuid, subgid, uidmap, await reach(uid, mmdebstrap && uidmap.ok && probe !== null)];
}

/** Can mmdebstrap's namespace root reach the build's work dir? Modes name the culprits; a real try decides. */
async function reach(uid: number, canProbe: boolean): Promise<Check> {
  // The build's work dir (not <home>/images, which may sit in a 0700 home) is what it must reach.
  const buildDir = resolve(buildWorkRoot());
  const chain: { path: string; mode: number }[] = [];
  let path = '/';
  for (const part of ['', ...buildDir.split('/').filter(Boolean)]) {
    path = part ? join(path, part) : '/';
    try {
      chain.push({ path, mode: statSync(path).mode });
    } catch {
      break; // made later by the build, with the umask
    }
  }
  const deepest = chain[chain.length - 1]?.path ?? '/';
  // process.umask() reads it by setting it; put it straight back.
  const mask = process.umask(0o022);
  process.umask(mask);
  const probe = uid !== 0 && canProbe ? await tries('mmdebstrap', ['--unshare-helper', 'sh', '-c', 'cd "$1"', 'sh', deepest]) : null;
  return reachVerdict({ uid, buildDir, chain, newDirsSearchable: (mask & 0o001) === 0, probe });
}

async function groupName(gid: number): Promise<string | null> {
  const r = await execa('getent', ['group', String(gid)], { reject: false, timeout: PROBE_TIMEOUT_MS });
  return r.exitCode === 0 ? (r.stdout.split(':')[0] ?? null) : null;
}

async function groupMembers(name: string): Promise<string[]> {
  const r = await execa('getent', ['group', name], { reject: false, timeout: PROBE_TIMEOUT_MS });
  return r.exitCode === 0 ? (r.stdout.trim().split(':')[3] ?? '').split(',').filter(Boolean) : [];
}

async function kvmFacts(): Promise<KvmFacts> {
  const uid = process.getuid?.() ?? 0;
  let device: KvmFacts['device'] = null;
  try {
    const st = statSync('/dev/kvm');
    device = { mode: st.mode, gid: st.gid, groupName: await groupName(st.gid) };
  } catch {
    /* no device */
  }
  let userInDeviceGroup = false;
  if (device) {
    const me = userInfo();
    // A primary group counts too; group members are listed by name.
    userInDeviceGroup = me.gid === device.gid || (device.groupName !== null && (await groupMembers(device.groupName)).includes(me.username));
  }
  return { platform: process.platform, uid, device, readWrite: hasKvmDevice(), userInDeviceGroup };
}

export async function doctor(o: { json?: boolean }): Promise<void> {
  const checks = await runChecks();
  if (o.json) process.stdout.write(JSON.stringify(checks) + '\n');
  else {
    const label = { ok: 'ok', warn: 'warn', missing: 'MISSING' } as const;
    process.stdout.write(table(['CHECK', 'STATUS', 'FOUND', 'FIX'], checks.map((c) => [c.name, label[c.status], c.found, c.status === 'ok' ? '' : c.fix])) + '\n');
  }
  if (checks.some((c) => !c.ok)) process.exitCode = 1;
}
