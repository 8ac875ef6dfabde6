// The project's one persistent agent container: ensure it exists, is current and runs; the
// committed image it may be made from; the instruction block refreshed at every start.
import { createHash } from 'node:crypto';
import type { ContainerSpec } from '../protocol.js';
import { meaningfulChanges } from './changes.js';
import { ContainerExec } from './container-exec.js';
import { STATE_VOLUME, agentContainerBody, specHash } from './agent-create-body.js';
import { AGENT_CONTAINER, INTERNAL_NETWORK, LABEL_IMAGE, LABEL_SPEC } from '../docker/names.js';
import {
  connectNetwork,
  containerChanges,
  createContainer,
  createVolume,
  inspectContainer,
  inspectImage,
  inspectNetwork,
  inspectVolume,
  removeContainer,
  startContainer,
  type Change,
  type ContainerInfo,
} from '../docker/engine.js';
import { upperDirChanges } from './upper-dir.js';
import { INSTRUCTION_FILES, instructionWrites } from './instructions.js';
import { ensureInternalNetwork, ensureRelay } from '../docker/network.js';
import { ensureProjectImage } from '../docker/project-image.js';
import { STATE_HOME } from './agents.js';
import { STACK_PREFIX as STACK_NETWORK } from '../stack/plan.js';
import { ensureController } from '../stack/controller-container.js';

/** What `vibebox commit` makes; the next container is created from it while it matches the spec. */
export const COMMITTED_IMAGE = 'vibebox/project:committed';

export type Log = (line: string) => void;

export interface Who {
  uid: number;
  gid: number;
}

export function hashOfSpec(spec: ContainerSpec): string {
  return specHash(spec, (s) => createHash('sha256').update(s).digest('hex'));
}

/** The committed image if it was made from this spec's project image, else null. */
async function committedFor(projectImage: string): Promise<string | null> {
  const img = await inspectImage(COMMITTED_IMAGE);
  if (!img) return null;
  return img.Config?.Labels?.[LABEL_IMAGE] === projectImage ? COMMITTED_IMAGE : null;
}

async function ensureVolume(): Promise<void> {
  if (!(await inspectVolume(STATE_VOLUME))) await createVolume(STATE_VOLUME, { 'org.vibebox.role': 'state' });
}

/** All the container's filesystem changes (from its upper dir when it is overlay2: see upper-dir.ts). */
export async function changesOf(c: ContainerInfo): Promise<Change[]> {
  const d = c.GraphDriver;
  const upper = d?.Data?.['UpperDir'];
  const all = d?.Name === 'overlay2' && upper ? upperDirChanges(upper, (d.Data?.['LowerDir'] ?? '').split(':').filter(Boolean)).changes : await containerChanges(c.Id);
  // Mount points the engine made in the container's layer are not the user's changes.
  const mounts = (c.Mounts ?? []).map((m) => m.Destination);
  return all.filter((x) => !(x.kind === 'added' && mounts.some((m) => x.path === m || m.startsWith(x.path + '/'))));
}

export async function uncommittedChanges(c: ContainerInfo): Promise<Change[]> {
  return meaningfulChanges(await changesOf(c));
}

let warming: Promise<void> | null = null;
/** A run came first: it starts what it needs itself, and the warm-up stands down. */
let runCame = false;

/**
 * At boot, in a VM whose project has an agent container: the relay, the stack-controller and the
 * agent container start in the background, so the first run after a boot finds them running.
 * A run that comes meanwhile waits for this (ensureContainer), never races it.
 */
export function warmContainers(who: Who, log: Log): Promise<void> {
  if (runCame) return Promise.resolve();
  warming ??= (async () => {
    const c = await inspectContainer(AGENT_CONTAINER);
    if (!c) return;
    await ensureInternalNetwork();
    const relay = ensureRelay(log);
    relay.catch(() => undefined);
    const controller = ensureController(log);
    controller.catch(() => undefined);
    await relay;
    if (!c.State.Running) {
      if (!(INTERNAL_NETWORK in (c.NetworkSettings.Networks ?? {}))) await connectNetwork(INTERNAL_NETWORK, c.Id);
      await startContainer(c.Id);
      await refreshInstructions(c.Id, who);
    }
    await controller;
  })();
  return warming;
}

/**
 * The running agent container for this spec. Warm path: one inspect. A container made from an
 * older spec is recreated when it has no uncommitted changes, kept (with one line) when it has.
 */
export async function ensureContainer(spec: ContainerSpec, who: Who, log: Log): Promise<ContainerInfo> {
  runCame = true;
  // A failed warm-up is retried below, step by step, with its errors shown.
  if (warming) await warming.catch(() => undefined);
  const hash = hashOfSpec(spec);
  let c = await inspectContainer(AGENT_CONTAINER);
  if (c && c.Config.Labels?.[LABEL_SPEC] !== hash) {
    if ((await uncommittedChanges(c)).length === 0) {
      log('vibebox: vibebox.toml changed the container; recreating it (your home directory is kept)');
      await removeContainer(c.Id);
      c = null;
    } else {
      log('vibebox: vibebox.toml changed the container but it has uncommitted changes; keeping it (run vibebox rebuild, or vibebox commit / vibebox reset first)');
    }
  }
  // A first start runs the relay's and the controller's starts beside the agent container's:
  // under emulation each start is many seconds, and nothing orders them but the network.
  let relay: Promise<void> | null = null;
  if (!c) {
    const projectImage = await ensureProjectImage(spec.image, log);
    await ensureInternalNetwork();
    relay = ensureRelay(log);
    relay.catch(() => undefined);
    await ensureVolume();
    const committed = await committedFor(projectImage);
    if (!committed && (await inspectImage(COMMITTED_IMAGE))) log(`vibebox: the committed image was made from an older [image]; starting from ${projectImage} (vibebox rebuild drops it)`);
    log(`vibebox: creating the agent container from ${committed ?? projectImage}`);
    await createContainer(AGENT_CONTAINER, agentContainerBody({ image: committed ?? projectImage, projectImage, specHash: hash, spec, uid: who.uid, gid: who.gid }));
    // An applied stack: a new agent container reaches its services by name too.
    if (await inspectNetwork(STACK_NETWORK)) await connectNetwork(STACK_NETWORK, AGENT_CONTAINER);
    c = await inspectContainer(AGENT_CONTAINER);
    if (!c) throw new Error(`${AGENT_CONTAINER} vanished after its creation`);
  }
  if (!c.State.Running) {
    // First use after a boot (or a creation): the relay may need its network back, the
    // instruction block its refresh.
    await (relay ?? ensureRelay(log));
    if (!(INTERNAL_NETWORK in (c.NetworkSettings.Networks ?? {}))) await connectNetwork(INTERNAL_NETWORK, c.Id);
    // The stack-controller answers the agent's vibebox-stack from the container's first start:
    // started beside it, waited for before the first command runs.
    const controller = ensureController(log);
    controller.catch(() => undefined);
    await startContainer(c.Id);
    await controller;
    await refreshInstructions(c.Id, who);
    c = (await inspectContainer(AGENT_CONTAINER)) ?? c;
  }
  return c;
}

/** Run a command in the container, collecting its output (for our own housekeeping). */
export async function execCollect(id: string, cmd: string[], user: string, input?: string, env: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  const x = new ContainerExec();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  if (input !== undefined) x.stdin(Buffer.from(input));
  x.stdinEnd();
  const r = await x.run(id, { Cmd: cmd, User: user, WorkingDir: '/', Env: env, Tty: false }, { stdout: (b) => out.push(b), stderr: (b) => err.push(b) });
  return { code: r.code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

/**
 * The instruction block in each agent's file, read and written inside the container as the agent
 * user (a symlink in the state volume then points only inside the container).
 */
export async function refreshInstructions(id: string, who: Who): Promise<string[]> {
  const user = `${who.uid}:${who.gid}`;
  // Each file as "1<text>" or "0" (absent), NUL-separated.
  const read = await execCollect(id, ['sh', '-c', 'cd "$HOME" && for f; do if [ -f "$f" ]; then printf 1; cat "$f"; else printf 0; fi; printf "\\0"; done', 'sh', ...INSTRUCTION_FILES], user);
  if (read.code !== 0) throw new Error(`reading the instruction files failed: ${read.stderr.trim()}`);
  const parts = read.stdout.split('\0');
  const current = new Map<string, string | null>(INSTRUCTION_FILES.map((f, i) => [f, parts[i]?.startsWith('1') ? parts[i]!.slice(1) : null]));
  const writes = instructionWrites(current);
  if (writes.size === 0) return [];
  // All files in one exec (each exec is seconds under emulation): pairs of path and text as arguments.
  const args = [...writes].flatMap(([rel, text]) => [rel, text]);
  const script = 'cd "$HOME" && while [ $# -gt 1 ]; do mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1.vibebox-tmp" && mv -f "$1.vibebox-tmp" "$1" || exit 1; shift 2; done';
  const w = await execCollect(id, ['sh', '-c', script, 'sh', ...args], user);
  if (w.code !== 0) throw new Error(`writing the instruction files in ${STATE_HOME} failed: ${w.stderr.trim()}`);
  return [...writes.keys()];
}

