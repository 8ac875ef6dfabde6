// A small Docker Engine API client over /run/docker.sock (node:http, no dependency): what the agent
// container needs, and exec with a hijacked stream, so a warm `vibebox run` starts no docker CLI.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { VibeboxError } from '../errors.js';

export const DOCKER_SOCKET = '/run/docker.sock';
/** One API call; long ones (commit, image removal) pass their own. Under emulation on a loaded
 * host a dockerd just started takes minutes to answer its first calls. */
const DEFAULT_TIMEOUT_MS = 120_000;
const FIRST_CALL_TIMEOUT_MS = 300_000;

export class EngineError extends VibeboxError {
  readonly status: number;
  constructor(status: number, what: string, message: string) {
    super('E_CONTAINER', `${what}: ${message || `HTTP ${status}`}`, 'see /var/log/dockerd.log in the VM');
    this.status = status;
  }
}

interface Reply {
  status: number;
  body: string;
}

function call(method: string, path: string, body: unknown, timeoutMs: number): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = httpRequest(
      {
        socketPath: DOCKER_SOCKET,
        method,
        path,
        headers: data ? { 'Content-Type': 'application/json', 'Content-Length': data.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(t);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    const t = setTimeout(() => req.destroy(new Error(`${method} ${path} took longer than ${timeoutMs / 1000} s`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(t);
      reject(new VibeboxError('E_CONTAINER', `the docker engine did not answer: ${e.message}`, 'see /var/log/dockerd.log in the VM'));
    });
    req.end(data);
  });
}

function messageOf(body: string): string {
  try {
    const m = (JSON.parse(body) as { message?: unknown }).message;
    return typeof m === 'string' ? m : body.trim();
  } catch {
    return body.trim();
  }
}

/** A call whose success statuses are given; anything else is an EngineError. */
async function expect(method: string, path: string, body: unknown, ok: number[], what: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Reply> {
  const r = await call(method, path, body, timeoutMs);
  if (!ok.includes(r.status)) throw new EngineError(r.status, what, messageOf(r.body));
  return r;
}

function json<T>(r: Reply): T {
  return JSON.parse(r.body) as T;
}

const q = encodeURIComponent;

// ---- containers ----

export interface ContainerInfo {
  Id: string;
  Image: string;
  State: { Running: boolean; Status: string; Pid: number; ExitCode?: number; Health?: { Status: string; Log?: { ExitCode: number; Output: string }[] | null } };
  Config: { Labels: Record<string, string> | null; Image: string; Env: string[] | null };
  HostConfig: Record<string, unknown>;
  NetworkSettings: { Networks: Record<string, unknown> | null };
  GraphDriver?: { Name: string; Data: Record<string, string> | null };
  Mounts?: { Type: string; Name?: string; Source: string; Destination: string }[];
}

/** The first call of an op: it waits out a dockerd that is still starting (see FIRST_CALL_TIMEOUT_MS). */
export async function inspectContainer(name: string, timeoutMs = FIRST_CALL_TIMEOUT_MS): Promise<ContainerInfo | null> {
  const r = await expect('GET', `/containers/${q(name)}/json`, undefined, [200, 404], `inspect container ${name}`, timeoutMs);
  return r.status === 404 ? null : json<ContainerInfo>(r);
}

export async function createContainer(name: string, body: object): Promise<string> {
  const r = await expect('POST', `/containers/create?name=${q(name)}`, body, [201], `create container ${name}`);
  return json<{ Id: string }>(r).Id;
}

export async function startContainer(id: string): Promise<void> {
  // 304: already running.
  await expect('POST', `/containers/${q(id)}/start`, undefined, [204, 304], `start container ${id}`, 60_000);
}

export async function removeContainer(id: string): Promise<void> {
  // Named volumes are never removed with it (no v=1).
  await expect('DELETE', `/containers/${q(id)}?force=1`, undefined, [204, 404], `remove container ${id}`, 60_000);
}

export type ChangeKind = 'changed' | 'added' | 'deleted';
export interface Change {
  path: string;
  kind: ChangeKind;
}

export async function containerChanges(id: string): Promise<Change[]> {
  const r = await expect('GET', `/containers/${q(id)}/changes`, undefined, [200], `changes of ${id}`, 60_000);
  const list = json<{ Path: string; Kind: number }[] | null>(r) ?? [];
  const kinds: ChangeKind[] = ['changed', 'added', 'deleted'];
  return list.map((c) => ({ path: c.Path, kind: kinds[c.Kind] ?? 'changed' }));
}

export async function commitContainer(id: string, repo: string, tag: string, labels: Record<string, string>): Promise<string> {
  // The container's config (Env, User…) is not baked in beyond what the image had: only the filesystem and labels.
  const r = await expect('POST', `/commit?container=${q(id)}&repo=${q(repo)}&tag=${q(tag)}&pause=1`, { Labels: labels }, [201], `commit ${id}`, 600_000);
  return json<{ Id: string }>(r).Id;
}

export async function stopContainer(id: string, seconds = 10): Promise<void> {
  // 304: not running; 404: gone (a stop of what is not there has nothing to do).
  await expect('POST', `/containers/${q(id)}/stop?t=${seconds}`, undefined, [204, 304, 404], `stop container ${id}`, (seconds + 60) * 1000);
}

export interface ContainerSummary {
  Id: string;
  Names: string[];
  State: string;
  Labels: Record<string, string> | null;
}

/** All containers (running or not) carrying label `key=value`. */
export async function listContainers(key: string, value: string): Promise<ContainerSummary[]> {
  const f = q(JSON.stringify({ label: [`${key}=${value}`] }));
  return json<ContainerSummary[]>(await expect('GET', `/containers/json?all=1&filters=${f}`, undefined, [200], 'list containers'));
}

/** A container's log as a stream (multiplexed: demux.ts); follow keeps it open. */
export function containerLogs(id: string, o: { follow: boolean; tail: number }): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: DOCKER_SOCKET, method: 'GET', path: `/containers/${q(id)}/logs?stdout=1&stderr=1&follow=${o.follow ? 1 : 0}&tail=${o.tail}` }, (res) => {
      if (res.statusCode === 200) return resolve(res);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => reject(new EngineError(res.statusCode ?? 0, `logs of ${id}`, messageOf(Buffer.concat(chunks).toString('utf8')))));
    });
    req.on('error', (e) => reject(new VibeboxError('E_CONTAINER', `the docker engine did not answer: ${e.message}`, 'see /var/log/dockerd.log in the VM')));
    req.end();
  });
}

// ---- images ----

/** Pull through dockerd (which reaches registries only through the egress proxy). The engine
 * answers 200 and reports a failure inside the progress stream. */
export async function pullImage(ref: string): Promise<void> {
  const r = await expect('POST', `/images/create?fromImage=${q(ref)}`, undefined, [200], `pull ${ref}`, 30 * 60_000);
  for (const line of r.body.split('\n')) {
    if (!line.trim()) continue;
    try {
      const m = JSON.parse(line) as { error?: unknown };
      if (typeof m.error === 'string') throw new EngineError(500, `pull ${ref}`, m.error);
    } catch (e) {
      if (e instanceof EngineError) throw e;
    }
  }
}

export interface ImageInfo {
  Id: string;
  Config: { Labels: Record<string, string> | null } | null;
}

export async function inspectImage(ref: string): Promise<ImageInfo | null> {
  const r = await expect('GET', `/images/${q(ref)}/json`, undefined, [200, 404], `inspect image ${ref}`);
  return r.status === 404 ? null : json<ImageInfo>(r);
}

export async function removeImage(ref: string): Promise<void> {
  await expect('DELETE', `/images/${q(ref)}`, undefined, [200, 404], `remove image ${ref}`, 120_000);
}

// ---- networks and volumes ----

export async function inspectNetwork(name: string): Promise<{ Id: string; Internal: boolean } | null> {
  const r = await expect('GET', `/networks/${q(name)}`, undefined, [200, 404], `inspect network ${name}`);
  return r.status === 404 ? null : json<{ Id: string; Internal: boolean }>(r);
}

export async function createNetwork(body: object): Promise<void> {
  // 409: created meanwhile by a concurrent run.
  await expect('POST', '/networks/create', body, [201, 409], 'create network');
}

export async function removeNetwork(name: string): Promise<void> {
  await expect('DELETE', `/networks/${q(name)}`, undefined, [204, 404], `remove network ${name}`);
}

export async function connectNetwork(network: string, container: string, aliases: string[] = []): Promise<void> {
  const r = await call('POST', `/networks/${q(network)}/connect`, { Container: container, EndpointConfig: { Aliases: aliases } }, DEFAULT_TIMEOUT_MS);
  // 403 "already exists in network" is fine: we only want it attached.
  if (r.status === 200) return;
  if (r.status === 403 && /already exists/.test(messageOf(r.body))) return;
  throw new EngineError(r.status, `connect ${container} to ${network}`, messageOf(r.body));
}

export async function disconnectNetwork(network: string, container: string): Promise<void> {
  const r = await call('POST', `/networks/${q(network)}/disconnect`, { Container: container, Force: true }, DEFAULT_TIMEOUT_MS);
  // 404 (no such network or container) and "is not connected": nothing to undo.
  if (r.status === 200 || r.status === 404) return;
  if (/not connected/.test(messageOf(r.body))) return;
  throw new EngineError(r.status, `disconnect ${container} from ${network}`, messageOf(r.body));
}

export async function listVolumes(key: string, value: string): Promise<string[]> {
  const f = q(JSON.stringify({ label: [`${key}=${value}`] }));
  const r = json<{ Volumes: { Name: string }[] | null }>(await expect('GET', `/volumes?filters=${f}`, undefined, [200], 'list volumes'));
  return (r.Volumes ?? []).map((v) => v.Name);
}

export async function removeVolume(name: string): Promise<void> {
  await expect('DELETE', `/volumes/${q(name)}`, undefined, [204, 404], `remove volume ${name}`);
}

export async function inspectVolume(name: string): Promise<{ Mountpoint: string } | null> {
  const r = await expect('GET', `/volumes/${q(name)}`, undefined, [200, 404], `inspect volume ${name}`);
  return r.status === 404 ? null : json<{ Mountpoint: string }>(r);
}

export async function createVolume(name: string, labels: Record<string, string>): Promise<void> {
  await expect('POST', '/volumes/create', { Name: name, Labels: labels }, [201], `create volume ${name}`);
}

// ---- exec ----

export interface ExecCreate {
  Cmd: string[];
  User: string;
  WorkingDir: string;
  Env: string[];
  Tty: boolean;
  /** [rows, cols]: the terminal's size from the first byte (API ≥ 1.42). */
  ConsoleSize?: [number, number];
}

export async function execCreate(container: string, o: ExecCreate): Promise<string> {
  const r = await expect(
    'POST',
    `/containers/${q(container)}/exec`,
    { ...o, AttachStdin: true, AttachStdout: true, AttachStderr: true },
    [201],
    'create exec',
  );
  return json<{ Id: string }>(r).Id;
}

/**
 * Start an exec and take over the connection (HTTP upgrade): the socket then carries stdin one way
 * and the output the other (multiplexed unless Tty). Resolves once the engine switched protocols.
 */
export function execStart(execId: string, tty: boolean, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<{ socket: Socket; head: Buffer }> {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(JSON.stringify({ Detach: false, Tty: tty }));
    const req = httpRequest({
      socketPath: DOCKER_SOCKET,
      method: 'POST',
      path: `/exec/${q(execId)}/start`,
      headers: { 'Content-Type': 'application/json', 'Content-Length': body.length, Connection: 'Upgrade', Upgrade: 'tcp' },
    });
    const t = setTimeout(() => req.destroy(new Error(`starting the exec took longer than ${timeoutMs / 1000} s`)), timeoutMs);
    req.on('upgrade', (_res: IncomingMessage, socket: Socket, head: Buffer) => {
      clearTimeout(t);
      resolve({ socket, head });
    });
    req.on('response', (res: IncomingMessage) => {
      // No upgrade: an error (404 no such exec, 409 container not running…).
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(t);
        reject(new EngineError(res.statusCode ?? 0, 'start exec', messageOf(Buffer.concat(chunks).toString('utf8'))));
      });
    });
    req.on('error', (e) => {
      clearTimeout(t);
      reject(new VibeboxError('E_CONTAINER', `the docker engine did not start the exec: ${e.message}`, 'see /var/log/dockerd.log in the VM'));
    });
    req.end(body);
  });
}

export interface ExecState {
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
}

export async function execInspect(execId: string): Promise<ExecState> {
  return json<ExecState>(await expect('GET', `/exec/${q(execId)}/json`, undefined, [200], 'inspect exec'));
}

export async function execResize(execId: string, cols: number, rows: number): Promise<void> {
  // 409/500 while the process is not (yet / any more) running: a resize then has nothing to do.
  await call('POST', `/exec/${q(execId)}/resize?h=${rows}&w=${cols}`, undefined, DEFAULT_TIMEOUT_MS);
}
