// `vibebox allow|deny <host>`: edit vibebox.toml on the host (which is the user's approval) and
// reload the running proxy.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { VibeboxError } from '../errors.js';
import { projectPaths, runPaths } from '../paths.js';
import { defaultConfigText, loadConfig, parseConfigText } from '../config/load.js';
import { setNetworkEntries } from '../config/edit.js';
import { resolveProject } from '../session/project.js';
import { readSessionFile } from '../session/state.js';
import { validateEntry } from '../../proxy/policy.js';
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

async function edit(hostArg: string, o: { project?: string }, verb: 'allow' | 'deny'): Promise<void> {
  const host = hostArg.trim();
  const bad = validateEntry(host);
  if (bad) throw new VibeboxError('E_USAGE', `"${host}" is not a host entry: ${bad}`, 'use a host like api.example.com or .example.com for a whole domain');
  const project = resolveProject(o.project);
  const file = projectPaths(project).config;
  const text = existsSync(file) ? readFileSync(file, 'utf8') : defaultConfigText();
  const before = loadConfig(project); // validates the file first: never edit a broken one
  const entries = [...before.network.entries];
  const add = (verb === 'allow') === (before.network.mode === 'allowlist');
  const has = entries.includes(host);
  let changed = false;
  if (add && !has) {
    entries.push(host);
    changed = true;
  } else if (!add && has) {
    entries.splice(entries.indexOf(host), 1);
    changed = true;
  }
  if (changed) {
    const next = setNetworkEntries(text, entries);
    parseConfigText(next);
    writeFileSync(file, next);
  }
  const s = readSessionFile(project);
  if (s) {
    // The host user approved this one host, not whatever else the (guest-writable) file asks
    // for: apply the same edit to the approved grant and keep the rest of it.
    const g = readGrant(s.id) ?? defaultGrant(project);
    const granted = [...g.network.entries];
    const grantAdd = (verb === 'allow') === (g.network.mode === 'allowlist');
    if (grantAdd && !granted.includes(host)) granted.push(host);
    else if (!grantAdd && granted.includes(host)) granted.splice(granted.indexOf(host), 1);
    writeGrant(s.id, { ...g, network: { mode: g.network.mode, entries: granted } });
    const live = await reloadIfRunning(s.id);
    process.stdout.write(`${verb === 'allow' ? 'allowed' : 'denied'} ${host}${changed ? '' : ' (no change)'}${live ? ' — applied to the running session' : ''}\n`);
  } else process.stdout.write(`${verb === 'allow' ? 'allowed' : 'denied'} ${host}${changed ? '' : ' (no change)'}\n`);
}

export const allow = (h: string, o: { project?: string }) => edit(h, o, 'allow');
export const deny = (h: string, o: { project?: string }) => edit(h, o, 'deny');
