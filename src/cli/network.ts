// `vibebox allow|deny <host>`: edit vibebox.toml on the host (which is the user's approval) and
// reload the running proxy.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, lstatSync, openSync, renameSync, rmSync, writeSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { readUntrusted } from '../fs/read-untrusted.js';
import { VibeboxError } from '../errors.js';
import { projectPaths, runPaths } from '../paths.js';
import { defaultConfigText, loadConfig, parseConfigText } from '../config/load.js';
import { editNetworkEntries } from '../config/edit.js';
import { resolveProject } from '../session/project.js';
import { readSessionFile } from '../session/state.js';
import { decide, parseEntry, validateEntry, type Decision, type NetworkPolicy, type ParsedEntry } from '../../proxy/policy.js';
import { shown } from '../../guest/shown.js';
import { covers } from '../approval/network-diff.js';
import { defaultGrant, updateGrant } from '../approval/store.js';
import { withHomeLock } from '../fs/home-lock.js';
import { request } from '../client/attach.js';
import { socketAnswers } from '../net/socket-answers.js';

export async function reloadIfRunning(id: string): Promise<boolean> {
  const sock = runPaths(id).supervisorSock;
  if (!(await socketAnswers(sock))) return false;
  const r = await request(sock, { type: 'reload' });
  if (r.type === 'error') throw new VibeboxError('E_CONFIG_INVALID', r.message, r.hint);
  return true;
}

/**
 * vibebox.toml as it is on disk, refusing anything but a regular file: the guest can write the
 * project, and a symlink there would make this host-side edit write wherever it points.
 */
function lstatConfig(file: string): Stats | null {
  let st: Stats;
  try {
    st = lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (st.isSymbolicLink()) {
    throw new VibeboxError('E_CONFIG_INVALID', `${file}: vibebox.toml is a symbolic link, refusing to edit through it`, 'replace it with a regular file and run again');
  }
  if (!st.isFile()) throw new VibeboxError('E_CONFIG_INVALID', `${file} is not a regular file`, 'replace it with a regular file and run again');
  return st;
}

/** Replace `file` by a new file (exclusive create, never following a link) renamed over it. */
function replaceFile(file: string, text: string, mode: number): void {
  const tmp = join(dirname(file), `.vibebox.toml.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, text);
    fchmodSync(fd, mode);
    fsyncSync(fd);
    closeSync(fd);
    renameSync(tmp, file); // replaces a link put there meanwhile, never writes through it
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      /* closed already */
    }
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** Entries after allowing (add) or removing `host`: removing takes every entry it covers, so
 *  `deny api.example.com` also removes `api.example.com:443`. */
function editEntries(entries: string[], host: string, add: boolean): string[] {
  if (add) return entries.includes(host) ? entries : [...entries, host];
  const target = parseEntry(host) as ParsedEntry; // validated by the caller
  return entries.filter((e) => {
    if (e === host) return false;
    const p = parseEntry(e);
    return typeof p === 'string' || !covers(target, p);
  });
}

/**
 * The proxy's decisions (proxy/policy.ts decide) for every distinct destination `target` names
 * under `policy`: a decision depends only on how a host and a port compare with the entries, so
 * the target's own host and port, the entries' hosts under it and ports, and one host and one
 * port no entry names stand for all of them.
 */
/** A decision and the port it was made for (`anyPort`: a port no entry names, standing for all of them). */
export type PortDecision = Decision & { port: number; anyPort: boolean };

export function decisions(policy: NetworkPolicy, target: ParsedEntry): PortDecision[] {
  const parsed = policy.entries.map(parseEntry).filter((e): e is ParsedEntry => typeof e !== 'string');
  const hosts = new Set<string>([target.host]);
  if (target.suffix) {
    for (const e of parsed) if (!e.ip && (e.host === target.host || e.host.endsWith(`.${target.host}`))) hosts.add(e.host);
    let other = `vibebox-any.${target.host}`;
    while (hosts.has(other)) other = `x${other}`;
    hosts.add(other);
  }
  const ports = new Set<number>();
  let other = 0;
  if (target.port !== undefined) ports.add(target.port);
  else {
    for (const e of parsed) if (e.port !== undefined) ports.add(e.port);
    other = 1;
    while (ports.has(other)) other++;
    ports.add(other);
  }
  const out: PortDecision[] = [];
  for (const h of hosts) for (const p of ports) out.push({ ...decide(policy, h, p), port: p, anyPort: p === other });
  return out;
}

const NEVER: Record<string, string> = {
  loopback: 'a loopback address (the VM itself or the host)',
  link_local: 'a link-local address (169.254.0.0/16, fe80::/10: cloud metadata endpoints live there)',
  reserved: 'a reserved or multicast address',
};

/** The one line of a destination the proxy refuses whatever vibebox.toml says, or null. */
function neverReachable(target: ParsedEntry): string | null {
  const d = decide({ mode: 'blocklist', entries: [] }, target.host, target.port ?? 443);
  return NEVER[d.reason] ?? null;
}

/** Where it is stuck, when that is narrower than what was asked: a subdomain, one port. */
function where(target: ParsedEntry, d: PortDecision): string {
  const host = d.host !== target.host ? ` for ${d.host}` : '';
  const port = !d.anyPort && target.port === undefined ? ` on port ${d.port}` : '';
  return `${host}${port}`;
}

/** Why `host` stays as it is after removing what it covers (the policy has no exceptions). */
function stuck(host: string, target: ParsedEntry, verb: 'allow' | 'deny', policy: NetworkPolicy, left: PortDecision[]): VibeboxError {
  // the one with the widest reach first: every port, then the asked host itself
  const d = left.find((x) => x.anyPort) ?? left.find((x) => x.host === target.host) ?? left[0]!;
  const state = verb === 'allow' ? 'blocked' : 'allowed';
  if (d.reason === 'private') {
    return new VibeboxError('E_NOT_CHANGED', `${host} stays blocked: ${d.host} is a private address, which a blocklist always refuses; nothing changed`, 'set [network] mode = "allowlist" in vibebox.toml and list the hosts you need, this one included');
  }
  const rule = d.rule ?? '?';
  const list = policy.mode === 'allowlist' ? 'an allowlist' : 'a blocklist';
  const hint = verb === 'deny'
    ? `\`vibebox deny ${rule}\` drops that entry and every host it allows; to keep the others, replace it in vibebox.toml by the hosts you need`
    : `\`vibebox allow ${rule}\` unblocks everything that entry blocks; to unblock one host only, set [network] mode = "allowlist" and list the hosts you need`;
  return new VibeboxError('E_NOT_CHANGED', `${host} stays ${state}${where(target, d)}: the entry "${rule}" ${verb === 'deny' ? 'allows' : 'blocks'} it and ${list} has no exceptions; nothing changed`, hint);
}

/** A sentence naming what already decides `host` as asked. */
function alreadySo(host: string, verb: 'allow' | 'deny', ds: Decision[]): string {
  const rules = [...new Set(ds.map((d) => d.rule).filter((r): r is string => r !== undefined))];
  const why: Record<string, string> = { not_in_allowlist: ' (not in the allowlist)', not_in_blocklist: ' (not in the blocklist)', private: ' (a private address in blocklist mode)' };
  const by = rules.length ? ` by ${rules.map((r) => `"${r}"`).join(', ')}` : (why[ds[0]?.reason ?? ''] ?? '');
  return `${host} is already ${verb === 'allow' ? 'allowed' : 'blocked'}${by}`;
}

async function edit(hostArg: string, o: { project?: string }, verb: 'allow' | 'deny'): Promise<void> {
  const host = hostArg.trim();
  const bad = validateEntry(host);
  if (bad) throw new VibeboxError('E_USAGE', `"${shown(host)}" is not a host entry: ${bad}`, 'use a host like api.example.com or .example.com for a whole domain');
  const target = parseEntry(host) as ParsedEntry;
  const never = neverReachable(target);
  if (never && verb === 'allow') {
    throw new VibeboxError('E_USAGE', `${shown(host)} is ${never}: the proxy refuses it whatever vibebox.toml says, so allowing it would change nothing`, 'the VM never reaches the host\'s own addresses; run the service in the VM (or as a stack service) instead');
  }
  const project = resolveProject(o.project);
  const file = projectPaths(project).config;
  const want = verb === 'allow';
  loadConfig(project); // a broken file is refused before anything, even the lock, is created
  const lockName = `config-${createHash('sha256').update(project).digest('hex').slice(0, 16)}`;
  // Read, decide and write under one lock: concurrent edits each see the one before.
  const r = await withHomeLock(lockName, file, () => {
    const st = lstatConfig(file);
    // Read without following a link or blocking (a FIFO swapped in after the lstat): see
    // docs/architecture.md, Walls: hostile files.
    const text = st ? (readUntrusted(file, { maxBytes: 1024 * 1024, what: 'vibebox.toml' })?.text ?? defaultConfigText()) : defaultConfigText();
    const before = loadConfig(project); // validates the file first: never edit a broken one
    const policy = before.network;
    const was = decisions(policy, target);
    if (was.every((d) => d.allowed === want)) return { changed: false, rewritten: false, note: alreadySo(host, verb, was) };
    const add = want === (policy.mode === 'allowlist');
    const entries = editEntries(policy.entries, host, add);
    const left = decisions({ mode: policy.mode, entries }, target).filter((d) => d.allowed !== want);
    if (left.length > 0) throw stuck(host, target, verb, policy, left);
    const next = editNetworkEntries(text, entries);
    parseConfigText(next.text);
    lstatConfig(file); // still not a link (rename would replace one anyway)
    replaceFile(file, next.text, st ? st.mode & 0o777 : 0o644);
    return { changed: true, rewritten: next.rewritten, note: '' };
  });
  const s = readSessionFile(project);
  let approvedNow = false;
  let live = false;
  if (s) {
    // The host user approved this one host, not whatever else the (guest-writable) file asks
    // for: apply the same edit to the approved grant and keep the rest of it.
    await updateGrant(s.id, (found) => {
      const g = found ?? defaultGrant(project);
      const grantAdd = want === (g.network.mode === 'allowlist');
      const granted = editEntries(g.network.entries, host, grantAdd);
      if (found && JSON.stringify(granted) === JSON.stringify(g.network.entries)) return null;
      approvedNow = JSON.stringify(granted) !== JSON.stringify(g.network.entries);
      return { ...g, network: { mode: g.network.mode, entries: granted } };
    });
    live = await reloadIfRunning(s.id);
  }
  const applied = live ? ' — applied to the running session' : '';
  if (r.changed) {
    const how = r.rewritten ? ' (vibebox.toml was rewritten from its parsed form: its layout could not be edited in place, its comments are gone)' : '';
    process.stdout.write(`${want ? 'allowed' : 'denied'} ${host}${how}${applied}\n`);
  } else if (approvedNow) {
    process.stdout.write(`${want ? 'allowed' : 'denied'} ${host} (vibebox.toml already said so; now approved)${applied}\n`);
  } else process.stdout.write(`${r.note}: no change\n`);
}

export const allow = (h: string, o: { project?: string }) => edit(h, o, 'allow');
export const deny = (h: string, o: { project?: string }) => edit(h, o, 'deny');
