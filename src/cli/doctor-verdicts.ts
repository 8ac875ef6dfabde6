// The pure half of `vibebox doctor`: what the host facts (read by doctor.ts as the real user)
// mean for a run, and the one command that fixes each. No I/O here, so every verdict is unit-tested.

export type Status = 'ok' | 'warn' | 'missing';

export interface Check {
  name: string;
  /** False only when the first run will fail (`status: 'missing'`); a warning still runs. */
  ok: boolean;
  status: Status;
  found: string;
  fix: string;
}

export function check(name: string, status: Status, found: string, fix = ''): Check {
  return { name, ok: status !== 'missing', status, found, fix };
}

export interface SubidEntry {
  /** A user name or a numeric uid, as written in the file. */
  owner: string;
  start: number;
  count: number;
}

/** Parse /etc/subuid or /etc/subgid (`name:start:count` lines); malformed lines are skipped. */
export function parseSubids(text: string): SubidEntry[] {
  const out: SubidEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^([^:]+):(\d+):(\d+)$/.exec(line);
    if (!m) continue;
    out.push({ owner: m[1]!, start: Number(m[2]), count: Number(m[3]) });
  }
  return out;
}

/** Debian's packages use ids up to 65534 (nogroup/nobody); useradd hands out 65536. */
export const SUBID_NEEDED = 65536;

/** A range that overlaps nobody's, for the fix (useradd starts at 100000). */
export function freeSubidRange(entries: SubidEntry[][], count = SUBID_NEEDED): string {
  let start = 100000;
  for (const e of entries.flat()) start = Math.max(start, e.start + e.count);
  return `${start}-${start + count - 1}`;
}

export interface UserFacts {
  name: string;
  uid: number;
}

/**
 * Whether mmdebstrap's unshare mode will find the user's subordinate ids. It reads the FIRST
 * line whose first field is the user NAME (a line by uid does not count for it).
 */
export function subidVerdict(kind: 'subuid' | 'subgid', file: string | null, user: UserFacts, fixRange: string): Check {
  const path = `/etc/${kind}`;
  const fix = `sudo usermod --add-subuids ${fixRange} --add-subgids ${fixRange} ${user.name}`;
  if (user.uid === 0) return check(kind, 'ok', 'not needed as root (the image builds in mmdebstrap root mode)');
  if (file === null) return check(kind, 'missing', `${path} is missing or unreadable`, fix);
  const entries = parseSubids(file);
  const byName = entries.find((e) => e.owner === user.name);
  if (!byName) {
    const byUid = entries.find((e) => e.owner === String(user.uid));
    return check(kind, 'missing', byUid ? `${path} lists uid ${user.uid} but not the name ${user.name} (mmdebstrap looks up the name)` : `no range for ${user.name} in ${path}`, fix);
  }
  const range = `${byName.start}-${byName.start + byName.count - 1}`;
  if (byName.count < SUBID_NEEDED) return check(kind, 'missing', `${user.name}:${range} has ${byName.count} ids, the image build needs ${SUBID_NEEDED}`, fix);
  return check(kind, 'ok', `${user.name}:${range}`);
}

export interface UsernsFacts {
  /** /proc/sys/kernel/unprivileged_userns_clone (Debian kernels before 5.x patches; null: absent). */
  unprivilegedClone: string | null;
  /** /proc/sys/user/max_user_namespaces. */
  maxUserNamespaces: string | null;
  /** /proc/sys/kernel/apparmor_restrict_unprivileged_userns (Ubuntu 23.10+; null: absent). */
  apparmorRestrict: string | null;
  /** `unshare --user --map-root-user true`, run as the user with a timeout. */
  probe: { ok: boolean; detail: string };
  uid: number;
}

const persist = (kv: string) => `echo ${kv} | sudo tee /etc/sysctl.d/90-vibebox-userns.conf && sudo sysctl --system`;

/**
 * User namespaces: the image build (non-root) and virtiofsd (everyone) create one. The live probe
 * is the truth; the sysctls only name the fix. A sysctl that forbids them is reported even if
 * the probe passed as root (root is exempt; the user is not).
 */
export function usernsVerdict(f: UsernsFacts): Check {
  const name = 'user namespaces';
  const reasons: { why: string; fix: string }[] = [];
  if (f.unprivilegedClone !== null && f.unprivilegedClone.trim() === '0') {
    reasons.push({ why: 'kernel.unprivileged_userns_clone = 0', fix: persist('kernel.unprivileged_userns_clone=1') });
  }
  if (f.maxUserNamespaces !== null && Number(f.maxUserNamespaces.trim()) <= 0) {
    reasons.push({ why: 'user.max_user_namespaces = 0', fix: persist('user.max_user_namespaces=10000') });
  }
  if (f.apparmorRestrict !== null && f.apparmorRestrict.trim() === '1') {
    reasons.push({ why: 'AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns = 1)', fix: persist('kernel.apparmor_restrict_unprivileged_userns=0') });
  }
  if (!f.probe.ok) {
    const why = reasons.length ? reasons.map((r) => r.why).join('; ') : `unshare --user failed: ${f.probe.detail}`;
    const fix = reasons.length ? reasons.map((r) => r.fix).join('; ') : 'allow unprivileged user namespaces (check the sysctls kernel.unprivileged_userns_clone, user.max_user_namespaces and any LSM policy)';
    return check(name, 'missing', why, fix);
  }
  if (reasons.length && f.uid !== 0) {
    // The probe passed but a sysctl says no: trust the probe, yet say what looks off.
    return check(name, 'ok', `unshare --user works (though ${reasons.map((r) => r.why).join('; ')})`);
  }
  if (reasons.length) return check(name, 'warn', `works for root; ordinary users cannot: ${reasons.map((r) => r.why).join('; ')}`, reasons.map((r) => r.fix).join('; '));
  return check(name, 'ok', 'unshare --user works');
}

export interface UidmapFacts {
  uid: number;
  newuidmap: { path: string; setuidRoot: boolean } | null;
  newgidmap: { path: string; setuidRoot: boolean } | null;
  /** `unshare --user --map-root-user --map-auto true` (newuidmap with the user's ranges); null: not tried. */
  probe: { ok: boolean; detail: string } | null;
}

/** newuidmap/newgidmap map the user's subordinate ids into mmdebstrap's namespace. */
export function uidmapVerdict(f: UidmapFacts): Check {
  const name = 'uidmap';
  const fix = 'sudo apt-get install uidmap';
  if (f.uid === 0) return check(name, 'ok', 'not needed as root');
  const missing = (['newuidmap', 'newgidmap'] as const).filter((t) => f[t] === null);
  if (missing.length) return check(name, 'missing', `${missing.join(' and ')} not found`, fix);
  const notSuid = (['newuidmap', 'newgidmap'] as const).filter((t) => !f[t]!.setuidRoot);
  if (f.probe && !f.probe.ok) {
    const hint = notSuid.length ? `; ${notSuid.map((t) => f[t]!.path).join(', ')} not setuid root` : '';
    return check(name, 'missing', `mapping the subordinate ids failed: ${f.probe.detail}${hint}`, notSuid.length ? 'sudo apt-get install --reinstall uidmap' : 'fix the subuid/subgid rows above, then run vibebox doctor again');
  }
  return check(name, 'ok', f.probe ? `${f.newuidmap!.path}, ${f.newgidmap!.path}; the subordinate ids map` : `${f.newuidmap!.path}, ${f.newgidmap!.path}`);
}

export interface KvmFacts {
  platform: NodeJS.Platform;
  uid: number;
  /** null: no /dev/kvm. */
  device: { mode: number; groupName: string | null; gid: number } | null;
  /** access(/dev/kvm, R_OK|W_OK) for this process. */
  readWrite: boolean;
  /** The group database lists the user in the device's group (it may be newer than this login). */
  userInDeviceGroup: boolean;
}

const ADD_KVM = 'add yourself to the kvm group (sudo usermod -aG kvm $USER, then log in again)';

/** KVM access: without it the VM runs under TCG (slow, but it runs): a warning, never "missing". */
export function kvmVerdict(f: KvmFacts): Check {
  const name = 'kvm';
  if (f.platform !== 'linux') return check(name, 'ok', 'not used on this platform');
  if (!f.device) return check(name, 'warn', 'no /dev/kvm: VMs run under tcg (software emulation, slow)', 'enable virtualization: load kvm_intel or kvm_amd (in a VM: turn on nested virtualization)');
  if (f.readWrite) return check(name, 'ok', `/dev/kvm is read-write for you${f.uid === 0 ? ' (root)' : ''}; the first start verifies it by a test boot`);
  const groupRw = (f.device.mode & 0o060) === 0o060;
  const group = f.device.groupName ?? String(f.device.gid);
  const slow = 'no read-write access to /dev/kvm: VMs run under tcg (slow)';
  if (groupRw && f.device.gid !== 0) {
    if (f.userInDeviceGroup) return check(name, 'warn', `${slow}; you are in the ${group} group since this login started`, 'log in again (or run newgrp ' + group + ') so the group applies');
    const fix = group === 'kvm' ? ADD_KVM : `add yourself to the ${group} group (sudo usermod -aG ${group} $USER, then log in again)`;
    return check(name, 'warn', `${slow}; /dev/kvm belongs to the ${group} group`, fix);
  }
  const mode = (f.device.mode & 0o777).toString(8).padStart(3, '0');
  return check(
    name,
    'warn',
    `${slow}; /dev/kvm is mode ${mode}, group ${group}: no group may use it`,
    `let the kvm group use it (sudo groupadd -f -r kvm && sudo chgrp kvm /dev/kvm && sudo chmod 660 /dev/kvm; udev does this on a standard install), then ${ADD_KVM}`,
  );
}

export interface ReachFacts {
  uid: number;
  /** Where images are built (<VIBEBOX_HOME>/images). */
  /** Where the build's namespace root must get to (its work dir under /var/tmp). */
  buildDir: string;
  /** Each existing directory from / down to buildDir (or its deepest existing ancestor). */
  chain: { path: string; mode: number }[];
  /** Whether directories still to be made get o+x (the umask lets "others" search them). */
  newDirsSearchable: boolean;
  /** `mmdebstrap --unshare-helper` (its namespace root) entering the deepest existing one; null: not tried. */
  probe: { ok: boolean; detail: string } | null;
}

/**
 * Without root, mmdebstrap builds the image as root of a user namespace, which on the host is a
 * subordinate uid: an "other". It must be able to search every directory down to images/ (a
 * 0700 home, adduser's default on Debian 12, stops it). The probe is the truth; the modes name
 * the directories to open.
 */
export function reachVerdict(f: ReachFacts): Check {
  const name = 'image build';
  if (f.uid === 0) return check(name, 'ok', 'not needed as root');
  const blocked = f.chain.filter((d) => (d.mode & 0o001) === 0).map((d) => d.path);
  const deepest = f.chain.length ? f.chain[f.chain.length - 1]!.path : '/';
  const who = "mmdebstrap's namespace root (a subordinate uid, an \"other\" on the host)";
  const alt = 'or set VIBEBOX_BUILD_TMPDIR to a directory they can pass through';
  if (f.probe?.ok === false || (f.probe === null && blocked.length)) {
    if (blocked.length) {
      return check(name, 'missing', `${who} cannot reach ${f.buildDir}: ${blocked.join(', ')} not searchable by others`, `chmod o+x ${blocked.join(' ')} (others may pass through, not list), ${alt}`);
    }
    return check(name, 'missing', `${who} cannot enter ${deepest}: ${f.probe!.detail}`, `let others search every directory down to ${f.buildDir} (chmod o+x), ${alt}`);
  }
  if (!f.newDirsSearchable && deepest !== f.buildDir) {
    return check(name, 'missing', `the umask makes new directories unsearchable by others, so ${who} will not reach ${f.buildDir}`, `mkdir -p -m 0755 ${f.buildDir}, ${alt}`);
  }
  return check(name, 'ok', `${who} can reach ${f.buildDir}`);
}
