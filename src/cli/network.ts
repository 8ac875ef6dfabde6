// `vibebox allow|deny <host>`: edit vibebox.toml on the host (which is the user's approval) and
// reload the running proxy.
import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, lstatSync, openSync, readFileSync, renameSync, rmSync, writeSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { VibeboxError } from '../errors.js';
import { projectPaths, runPaths } from '../paths.js';
import { defaultConfigText, loadConfig, parseConfigText } from '../config/load.js';
import { setNetworkEntries } from '../config/edit.js';
import { resolveProject } from '../session/project.js';
import { readSessionFile } from '../session/state.js';
import { parseEntry, validateEntry, type ParsedEntry } from '../../proxy/policy.js';
import { shown } from '../../guest/shown.js';
import { covers } from '../approval/network-diff.js';
import { readGrant, writeGrant, defaultGrant } from '../approval/store.js';
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

async function edit(hostArg: string, o: { project?: string }, verb: 'allow' | 'deny'): Promise<void> {
  const host = hostArg.trim();
  const bad = validateEntry(host);
  if (bad) throw new VibeboxError('E_USAGE', `"${shown(host)}" is not a host entry: ${bad}`, 'use a host like api.example.com or .example.com for a whole domain');
  const project = resolveProject(o.project);
  const file = projectPaths(project).config;
  const st = lstatConfig(file);
  const text = st ? readFileSync(file, 'utf8') : defaultConfigText();
  const before = loadConfig(project); // validates the file first: never edit a broken one
  const add = (verb === 'allow') === (before.network.mode === 'allowlist');
  const entries = editEntries(before.network.entries, host, add);
  const changed = JSON.stringify(entries) !== JSON.stringify(before.network.entries);
  if (changed) {
    const next = setNetworkEntries(text, entries);
    parseConfigText(next);
    lstatConfig(file); // still not a link (rename would replace one anyway)
    replaceFile(file, next, st ? st.mode & 0o777 : 0o644);
  }
  const s = readSessionFile(project);
  if (s) {
    // The host user approved this one host, not whatever else the (guest-writable) file asks
    // for: apply the same edit to the approved grant and keep the rest of it.
    const g = readGrant(s.id) ?? defaultGrant(project);
    const grantAdd = (verb === 'allow') === (g.network.mode === 'allowlist');
    const granted = editEntries(g.network.entries, host, grantAdd);
    writeGrant(s.id, { ...g, network: { mode: g.network.mode, entries: granted } });
    const live = await reloadIfRunning(s.id);
    process.stdout.write(`${verb === 'allow' ? 'allowed' : 'denied'} ${host}${changed ? '' : ' (no change)'}${live ? ' — applied to the running session' : ''}\n`);
  } else process.stdout.write(`${verb === 'allow' ? 'allowed' : 'denied'} ${host}${changed ? '' : ' (no change)'}\n`);
}

export const allow = (h: string, o: { project?: string }) => edit(h, o, 'allow');
export const deny = (h: string, o: { project?: string }) => edit(h, o, 'deny');
