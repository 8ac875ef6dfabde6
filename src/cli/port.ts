// `vibebox port <guest> [host]`: forward host 127.0.0.1:<host> to <guest> in the running session
// (a server in the VM, or in the agent container when nothing in the VM listens there). Typed by
// the user on the host, so it needs no further approval; it lasts as long as the session (to keep
// one, add [[ports]] to vibebox.toml). `vibebox port` lists; `--close <host>` removes one.
import { VibeboxError } from '../errors.js';
import { runPaths } from '../paths.js';
import { resolveProject } from '../session/project.js';
import { readSessionFile } from '../session/state.js';
import { request } from '../client/attach.js';
import { socketAnswers } from '../net/socket-answers.js';
import type { Status } from '../supervisor/client-protocol.js';
import { jsonShown, shown } from '../../guest/shown.js';

export function parsePort(s: string, what: string): number {
  const n = /^\d{1,5}$/.test(s) ? Number(s) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new VibeboxError('E_USAGE', `${what} "${s}" is not a port number`, 'use a number from 1 to 65535');
  return n;
}

/** The running session's supervisor socket, or a one-line error. */
export async function liveSocket(project: string): Promise<string> {
  const s = readSessionFile(project);
  const sock = s ? runPaths(s.id).supervisorSock : null;
  if (!sock || !(await socketAnswers(sock))) throw new VibeboxError('E_SESSION_NONE', `no running session in ${project}`, 'start one with `vibebox`, or add [[ports]] to vibebox.toml');
  return sock;
}

export async function liveStatus(sock: string): Promise<Status> {
  const r = await request(sock, { type: 'status' });
  if (r.type !== 'status') throw new VibeboxError('E_SUPERVISOR', 'the supervisor did not report its status');
  return r.status;
}

export function forwardLines(fs: NonNullable<Status['forwards']>): string[] {
  // The container name and the error come from the guest.
  return fs.map(
    (f) =>
      shown(`127.0.0.1:${f.host} → guest ${f.guest}${f.container ? ` (${f.container})` : ''} [${f.origin}]${f.state === 'open' ? '' : ` ${f.state}${f.error ? `: ${f.error}` : ''}`}`),
  );
}

export async function port(guestArg: string | undefined, hostArg: string | undefined, o: { project?: string; close?: string; json?: boolean }): Promise<void> {
  // The arguments first: a typo is bad input whether or not a session runs.
  const close = o.close !== undefined ? parsePort(o.close, 'host port') : undefined;
  if (close !== undefined && guestArg !== undefined) throw new VibeboxError('E_USAGE', '--close takes no guest port', 'use vibebox port --close <host>');
  const guest = guestArg === undefined ? undefined : parsePort(guestArg, 'guest port');
  const host = hostArg === undefined ? guest : parsePort(hostArg, 'host port');
  const project = resolveProject(o.project);
  const sock = await liveSocket(project);
  const send = async (msg: Parameters<typeof request>[1]): Promise<void> => {
    // Opening waits for the guest (and a booting session): longer than a status.
    const r = await request(sock, msg, 30_000);
    if (r.type === 'error') throw new VibeboxError(r.code === 'E_PORT_IN_USE' ? 'E_PORT_IN_USE' : r.code === 'E_USAGE' ? 'E_USAGE' : 'E_PORT', r.message, r.hint);
  };
  if (close !== undefined) {
    await send({ type: 'port', host: close, close: true });
    process.stdout.write(`closed 127.0.0.1:${close}\n`);
    return;
  }
  if (guest === undefined || host === undefined) {
    const fs = (await liveStatus(sock)).forwards ?? [];
    if (o.json) process.stdout.write(jsonShown(fs) + '\n');
    else process.stdout.write(fs.length ? forwardLines(fs).join('\n') + '\n' : 'no ports forwarded\n');
    return;
  }
  await send({ type: 'port', host, guest });
  process.stdout.write(`http://127.0.0.1:${host} → guest port ${guest} (until the session stops)\n`);
}
