// `vibebox kit build|serve|ls|stop`. build is host-only work (src/kit/build.ts); serve
// runs a built dist/ (inside the project, so the VM sees it under /workspace) in a container in the
// session's VM (guest/containers/kit.ts) and forwards its port to 127.0.0.1 on the host.
import { realpathSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { VibeboxError } from '../errors.js';
import { keyFingerprint } from '../../guest/kit/auth.js';
import { KitManifestFile } from '../../guest/kit/main-schema.js';
import { resolveProject } from '../session/project.js';
import { readKeys } from '../keys/env-file.js';
import { WORKSPACE } from '../config/load.js';
import { pollUntil } from '../../guest/poll.js';
import { KIT_PORT, kitContainerName } from '../../guest/containers/agent-create-body.js';
import { freePort } from '../net/free-port.js';
import { forwardLines, liveSocket, liveStatus, parsePort } from './port.js';
import { request } from '../client/attach.js';
import { hasUnsafeText, shown } from '../../guest/shown.js';
import { readUntrusted } from '../fs/read-untrusted.js';
import { KEY_FORMAT } from '../kit/key-format.js';
import { expectKind } from './op-render.js';

/** A failed op's line, as a VibeboxError prints it (escaped where it is written). */
const failureLine = (f: { message: string; hint?: string }) => `vibebox: ${f.message}${f.hint ? ` (${f.hint})` : ''}`;

export async function kitBuild(entry: string, o: { out?: string; name?: string; version?: string; project?: string }): Promise<void> {
  const { buildKit } = await import('../kit/build.js');
  const r = await buildKit(entry, o);
  // The version comes from the kit's own code (its declaration): escaped.
  process.stdout.write(`built kit ${shown(r.name)} ${shown(r.version)} in ${shown(r.out)}\n  key: ${shown(r.keyFile)} (${r.keyReused ? 'kept from the last build' : 'new'}; mode 0600)\n`);
}

/** The dist directory as the VM sees it: it must be inside the project (mounted at /workspace). */
export function guestPathOf(project: string, dist: string): string {
  const rel = relative(project, dist);
  if (rel === '' || rel.startsWith('..') || resolve(project, rel) !== dist) throw new VibeboxError('E_USAGE', `${dist} is outside the project ${project}`, 'build the kit into the project (vibebox kit build <entry> --out <dir in the project>)');
  return `${WORKSPACE}/${rel.split(sep).join('/')}`;
}

const KIT_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

/**
 * kit.json and kit.key, as the guest may have left them: read without following a link, regular
 * files only, size-capped (readUntrusted); the key must have the exact format kit build writes
 * and match kit.json's fingerprint, which is required: a link or a copy of a host key (an ssh
 * key is 0600 too) is never sent into the VM. See docs/architecture.md, "Hostile files".
 */
export function readDist(dist: string): { manifest: ReturnType<typeof KitManifestFile.parse>; key: string; keyFile: string } {
  const jsonFile = join(dist, 'kit.json');
  const raw = readUntrusted(jsonFile, { maxBytes: 1024 * 1024, what: 'the kit manifest', code: 'E_USAGE' });
  if (!raw) throw new VibeboxError('E_USAGE', `${shown(dist)} is not a built kit (no kit.json)`, 'run vibebox kit build <entry> first');
  let manifest;
  try {
    manifest = KitManifestFile.parse(JSON.parse(raw.text));
  } catch (e) {
    throw new VibeboxError('E_USAGE', `${shown(dist)} is not a built kit (${shown((e as Error).message.split('\n')[0] ?? '')})`, 'run vibebox kit build <entry> first');
  }
  if (!KIT_NAME.test(manifest.name)) throw new VibeboxError('E_USAGE', `kit.json names the kit ${shown(manifest.name)}, not a valid kit name`, 'run vibebox kit build again');
  if (hasUnsafeText(manifest.version)) throw new VibeboxError('E_USAGE', `kit.json's version ${shown(manifest.version)} has control or invisible characters`, 'run vibebox kit build again');
  const keyFile = join(dist, 'kit.key');
  const k = readUntrusted(keyFile, { maxBytes: 256, what: 'the kit key', code: 'E_USAGE' });
  if (!k) throw new VibeboxError('E_USAGE', `no kit key ${shown(keyFile)}`, 'run vibebox kit build again');
  if ((k.mode & 0o077) !== 0) throw new VibeboxError('E_USAGE', `${shown(keyFile)} is readable by others`, `chmod 600 ${shown(keyFile)}`);
  if (!KEY_FORMAT.test(k.text)) throw new VibeboxError('E_USAGE', `${shown(keyFile)} is not a kit key (43 base64url characters)`, 'run vibebox kit build again');
  const key = k.text.trim();
  if (!manifest.key_fingerprint) throw new VibeboxError('E_USAGE', `${shown(jsonFile)} has no key_fingerprint`, 'run vibebox kit build again');
  if (manifest.key_fingerprint !== keyFingerprint(key)) throw new VibeboxError('E_USAGE', `${shown(keyFile)} does not match kit.json's key_fingerprint`, 'run vibebox kit build again');
  return { manifest, key, keyFile };
}

export async function kitServe(distArg: string, o: { project?: string; port?: string; name?: string }): Promise<void> {
  const project = resolveProject(o.project);
  let dist: string;
  try {
    dist = realpathSync(resolve(distArg));
  } catch {
    throw new VibeboxError('E_USAGE', `${shown(distArg)} does not exist`, 'run vibebox kit build <entry> first');
  }
  const guestDir = guestPathOf(project, dist);
  const { manifest, key, keyFile } = readDist(dist);
  const name = o.name ?? manifest.name;
  if (!KIT_NAME.test(name)) throw new VibeboxError('E_USAGE', `kit name ${shown(name)} is not valid`, 'use lower-case letters, digits, ".", "_" or "-"');
  // The manifest's variables come from ~/.vibebox/.env, by name; a missing required one is an error now.
  const wanted = Object.entries(manifest.env ?? {});
  const keys = wanted.length ? readKeys() : new Map<string, string>();
  const missing = wanted.filter(([n, s]) => s.required && !keys.has(n) && s.default === undefined).map(([n]) => n);
  if (missing.length) throw new VibeboxError('E_USAGE', `kit ${name} needs ${missing.join(', ')}`, 'add them to ~/.vibebox/.env');
  const env: Record<string, string> = { VIBEBOX_KIT_KEY: key };
  for (const [n, s] of wanted) {
    const v = keys.get(n) ?? s.default;
    if (v !== undefined) env[n] = v;
  }
  const { requestOp } = await import('../client/op.js');
  const served = await requestOp({ project, request: { op: 'kit_serve', name, dir: guestDir }, env });
  if (!served.ok) {
    process.stderr.write(`${shown(failureLine(served.failure))}\n`);
    throw new VibeboxError('E_KIT', `kit ${name} did not start (exit ${served.failure.exitCode})`, 'see the lines above');
  }
  const sock = await liveSocket(project);
  const container = kitContainerName(name);
  // Served again: the same host port (clients keep their URL) unless --port says otherwise.
  const before = ((await liveStatus(sock)).forwards ?? []).filter((f) => f.container === container);
  const host = o.port !== undefined ? parsePort(o.port, 'host port') : (before[0]?.host ?? (await freePort()));
  for (const f of before) if (f.host !== host) await request(sock, { type: 'port', host: f.host, close: true });
  const r = await request(sock, { type: 'port', host, guest: KIT_PORT, container, origin: 'kit' }, 30_000);
  if (r.type === 'error') throw new VibeboxError(r.code === 'E_PORT_IN_USE' ? 'E_PORT_IN_USE' : 'E_PORT', r.message, r.hint);
  // Up when /health answers through the forward (node under emulation takes a while to start).
  const health = `http://127.0.0.1:${host}/health`;
  await pollUntil(
    async () => {
      try {
        const res = await fetch(health, { signal: AbortSignal.timeout(3000) });
        return res.ok;
      } catch {
        return false;
      }
    },
    { deadline: Date.now() + 180_000, intervalMs: 250, maxIntervalMs: 2000, what: `kit ${name} answering on ${health}` },
  ).catch(() => {
    throw new VibeboxError('E_KIT', `kit ${name} did not answer on ${health} within 180 s`, `see its log: vibebox exec --user root -- docker logs ${container}`);
  });
  process.stdout.write(`kit ${shown(name)} ${shown(manifest.version)} serving at ws://127.0.0.1:${host}/ (key: ${shown(keyFile)})\n`);
}

export async function kitLs(o: { project?: string }): Promise<void> {
  const project = resolveProject(o.project);
  const sock = await liveSocket(project);
  const { requestOp } = await import('../client/op.js');
  // The list comes from the VM (container labels): shown escaped.
  const r = await requestOp({ project, request: { op: 'kit_ls' } });
  if (!r.ok) {
    process.stderr.write(`${shown(failureLine(r.failure))}\n`);
    throw new VibeboxError('E_KIT', `listing kits failed (exit ${r.failure.exitCode})`);
  }
  process.stdout.write(kitLsText(expectKind(r.result, 'kits').kits.map((k) => `${k.name}\t${k.state}\n`).join('')));
  const fs = ((await liveStatus(sock)).forwards ?? []).filter((f) => f.origin === 'kit');
  if (fs.length) process.stdout.write(forwardLines(fs).map((l) => `  ${shown(l)}`).join('\n') + '\n');
}

/** `name<TAB>state` lines from the VM, every field escaped (shown): a label cannot drive the terminal. */
export function kitLsText(raw: string): string {
  const lines = raw.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.map((l) => l.split('\t').map(shown).join('\t') + '\n').join('');
}

export async function kitStop(name: string, o: { project?: string }): Promise<void> {
  if (!KIT_NAME.test(name)) throw new VibeboxError('E_USAGE', `kit name ${shown(name)} is not valid`, 'use lower-case letters, digits, ".", "_" or "-"');
  const project = resolveProject(o.project);
  const sock = await liveSocket(project);
  const { requestOp } = await import('../client/op.js');
  const r = await requestOp({ project, request: { op: 'kit_stop', name } });
  if (!r.ok) process.stderr.write(`${shown(failureLine(r.failure))}\n`);
  const code = r.ok ? (expectKind(r.result, 'kit_stopped').found ? 0 : 1) : r.failure.exitCode;
  for (const f of ((await liveStatus(sock)).forwards ?? []).filter((x) => x.container === kitContainerName(name))) await request(sock, { type: 'port', host: f.host, close: true });
  if (code !== 0) process.exitCode = code;
  else process.stdout.write(`kit ${name} stopped\n`);
}
