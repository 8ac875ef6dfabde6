// Apply, rollback, reconcile, down and destroy as DATA: ordered steps computed from what Docker has
// (LiveState) and what the manifest wants. A separate module runs them against dockerd; keeping the
// decisions here makes every ordering rule a unit test instead of a VM test.
//
// Apply order: network → volumes → images → containers → health waits → attach the agent (after
// the waits, so a failed apply's rollback can remove the network with no agent endpoint on it) →
// remove services the manifest dropped (last, so a failed apply never loses them).
// Rollback undoes exactly the completed steps that changed something, in reverse. Pulled images
// are not removed: they are a content-addressed cache, change nothing a service sees, and a retry
// after fixing a healthcheck would pull them again through the proxy.
// Volumes of a dropped service are kept (like compose down): reapplying finds the data; destroy
// removes them.
import { createHash } from 'node:crypto';
import { BASE_CAPS, parseEnvValue, type Manifest, type ServiceSpec } from './manifest.js';

export const STACK_PREFIX = 'vibebox-stack';
export const LABEL_STACK = 'vibebox.stack';
export const LABEL_SERVICE = 'vibebox.stack.service';
export const LABEL_SPEC = 'vibebox.stack.spec';

/** Docker names for one stack. Volumes use '_' before the volume name: service names cannot contain
 * it, so `a` + `b-c` and `a-b` + `c` never collide. */
export interface StackNames {
  network: string;
  container(service: string): string;
  volume(service: string, volume: string): string;
}

export function stackNames(prefix: string = STACK_PREFIX): StackNames {
  return {
    network: prefix,
    container: (s) => `${prefix}-${s}`,
    volume: (s, v) => `${prefix}-${s}_${v}`,
  };
}

/** The service a live container belongs to, by its labels (never by name: other containers may
 * share the prefix), or null if it is not one of this stack's. */
export function serviceOf(c: LiveContainer, names: StackNames): string | null {
  return c.labels[LABEL_STACK] === names.network ? (c.labels[LABEL_SERVICE] ?? null) : null;
}

export interface ContainerSpec {
  name: string;
  service: string;
  image: string;
  command: string[] | null;
  /** Resolved: `${VAR}` substituted, `$$` unescaped. */
  env: Record<string, string>;
  /** The service name: what the agent container resolves. */
  hostname: string;
  network: string;
  aliases: string[];
  mounts: { volume: string; target: string; readOnly: boolean }[];
  capDrop: ['ALL'];
  capAdd: string[];
  securityOpt: ['no-new-privileges:true'];
  nanoCpus: number;
  memoryBytes: number;
  /** Equal to memoryBytes: no swap beyond the cap. */
  memorySwapBytes: number;
  pidsLimit: number;
  healthcheck: { test: string[]; intervalNs: number; timeoutNs: number; retries: number; startPeriodNs: number } | null;
  restartPolicy: 'unless-stopped';
  labels: Record<string, string>;
}

export type Step =
  | { kind: 'create_network'; network: string; internal: true; labels: Record<string, string> }
  | { kind: 'create_volume'; volume: string; service: string; labels: Record<string, string> }
  | { kind: 'pull_image'; image: string }
  | { kind: 'require_local_image'; image: string }
  | { kind: 'create_container'; spec: ContainerSpec }
  | { kind: 'start_container'; container: string; service: string }
  | { kind: 'stop_container'; container: string; service: string }
  /** restore: what rollback recreates (and starts if restoreRunning) after undoing later steps. */
  | { kind: 'remove_container'; container: string; service: string; restore: ContainerSpec | null; restoreRunning: boolean }
  | { kind: 'wait_healthy'; container: string; service: string; timeoutMs: number }
  | { kind: 'wait_running'; container: string; service: string; timeoutMs: number }
  | { kind: 'connect_network'; network: string; container: string }
  | { kind: 'disconnect_network'; network: string; container: string }
  | { kind: 'remove_volume'; volume: string }
  | { kind: 'remove_network'; network: string };

export interface LiveContainer {
  name: string;
  running: boolean;
  labels: Record<string, string>;
}

/** What Docker has now (the executor reads it with docker inspect/ls). */
export interface LiveState {
  networks: { name: string; internal: boolean }[];
  volumes: string[];
  /** Image references present locally, as written in manifests. */
  images: string[];
  containers: LiveContainer[];
  /** The project's agent container, when one exists, and whether it is on the network. */
  agent: { name: string; attached: boolean } | null;
}

export interface PlanOptions {
  /** Values for `${VAR}` (the executor passes only allowlisted names). */
  vars?: Record<string, string>;
  names?: StackNames;
  /** Cap on any one health wait. */
  maxWaitMs?: number;
}

export type PlanResult = { ok: true; steps: Step[] } | { ok: false; code: 'network_not_internal'; message: string };

export const PIDS_LIMIT = 1024;
export const RUNNING_WAIT_MS = 30_000;
export const MAX_WAIT_MS = 300_000;

/** Substitute `${VAR}` (unset → empty, as compose does) and `$$`. Values were validated already. */
export function resolveEnv(env: Record<string, string>, vars: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) {
    const parsed = parseEnvValue(v);
    out[k] = parsed.ok ? parsed.parts.map((p) => ('literal' in p ? p.literal : (vars[p.variable] ?? ''))).join('') : v;
  }
  return out;
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function containerSpec(s: ServiceSpec, names: StackNames, vars: Record<string, string>): ContainerSpec {
  const ns = (ms: number) => ms * 1_000_000;
  const spec: ContainerSpec = {
    name: names.container(s.name),
    service: s.name,
    image: s.image.ref,
    command: s.command,
    env: resolveEnv(s.env, vars),
    hostname: s.name,
    network: names.network,
    aliases: [s.name],
    mounts: s.volumes.map((v) => ({ volume: names.volume(s.name, v.name), target: v.target, readOnly: v.readOnly })),
    capDrop: ['ALL'],
    capAdd: [...new Set([...BASE_CAPS, ...s.capAdd])].sort(),
    securityOpt: ['no-new-privileges:true'],
    nanoCpus: Math.round(s.cpus * 1e9),
    memoryBytes: s.memoryBytes,
    memorySwapBytes: s.memoryBytes,
    pidsLimit: PIDS_LIMIT,
    healthcheck: s.healthcheck
      ? { test: s.healthcheck.test, intervalNs: ns(s.healthcheck.intervalMs), timeoutNs: ns(s.healthcheck.timeoutMs), retries: s.healthcheck.retries, startPeriodNs: ns(s.healthcheck.startPeriodMs) }
      : null,
    restartPolicy: 'unless-stopped',
    labels: {},
  };
  // The hash covers everything but the labels, so a container whose label matches needs nothing.
  const hash = createHash('sha256').update(canonical(spec)).digest('hex').slice(0, 16);
  spec.labels = { [LABEL_STACK]: names.network, [LABEL_SERVICE]: s.name, [LABEL_SPEC]: hash };
  return spec;
}

/** How long to wait for a service to become healthy: long enough for Docker to give up itself. */
export function healthWaitMs(s: ServiceSpec, maxWaitMs: number = MAX_WAIT_MS): number {
  const h = s.healthcheck;
  if (!h) return RUNNING_WAIT_MS;
  return Math.min(maxWaitMs, Math.max(10_000, h.startPeriodMs + h.retries * (h.intervalMs + h.timeoutMs) + h.intervalMs));
}

interface ConvergeOptions extends PlanOptions {
  /** Remove this stack's containers that the manifest no longer has (apply: yes; reconcile: no). */
  removeOrphans: boolean;
  /** The manifest the containers were made from (for rollback to recreate what apply replaces). */
  previous: Manifest | null;
}

function converge(live: LiveState, manifest: Manifest, o: ConvergeOptions): PlanResult {
  const names = o.names ?? stackNames();
  const vars = o.vars ?? {};
  const steps: Step[] = [];
  const net = live.networks.find((n) => n.name === names.network);
  if (net && !net.internal) {
    return { ok: false, code: 'network_not_internal', message: `network ${names.network} exists but is not internal; remove it (docker network rm ${names.network}) and apply again` };
  }
  if (!net) steps.push({ kind: 'create_network', network: names.network, internal: true, labels: { [LABEL_STACK]: names.network } });

  const volumes = new Set(live.volumes);
  for (const s of manifest.services) {
    for (const v of s.volumes) {
      const volume = names.volume(s.name, v.name);
      if (!volumes.has(volume)) {
        volumes.add(volume);
        steps.push({ kind: 'create_volume', volume, service: s.name, labels: { [LABEL_STACK]: names.network, [LABEL_SERVICE]: s.name } });
      }
    }
  }

  const containers = new Map(live.containers.map((c) => [c.name, c]));
  const previous = new Map((o.previous?.services ?? []).map((s) => [s.name, containerSpec(s, names, vars)]));
  const work: { s: ServiceSpec; spec: ContainerSpec; action: 'create' | 'replace' | 'start' }[] = [];
  for (const s of manifest.services) {
    const spec = containerSpec(s, names, vars);
    const have = containers.get(spec.name);
    if (!have) work.push({ s, spec, action: 'create' });
    else if (have.labels[LABEL_SPEC] !== spec.labels[LABEL_SPEC]) work.push({ s, spec, action: 'replace' });
    else if (!have.running) work.push({ s, spec, action: 'start' });
  }

  const images = new Set(live.images);
  for (const { s, action } of work) {
    if (action === 'start' || images.has(s.image.ref)) continue;
    images.add(s.image.ref);
    steps.push(s.image.local ? { kind: 'require_local_image', image: s.image.ref } : { kind: 'pull_image', image: s.image.ref });
  }

  for (const { s, spec, action } of work) {
    if (action === 'replace') {
      const have = containers.get(spec.name);
      steps.push({ kind: 'remove_container', container: spec.name, service: s.name, restore: previous.get(s.name) ?? null, restoreRunning: have?.running ?? false });
    }
    if (action !== 'start') steps.push({ kind: 'create_container', spec });
    steps.push({ kind: 'start_container', container: spec.name, service: s.name });
  }

  for (const { s, spec } of work) {
    const timeoutMs = healthWaitMs(s, o.maxWaitMs);
    steps.push(s.healthcheck ? { kind: 'wait_healthy', container: spec.name, service: s.name, timeoutMs } : { kind: 'wait_running', container: spec.name, service: s.name, timeoutMs });
  }

  if (live.agent && !live.agent.attached) steps.push({ kind: 'connect_network', network: names.network, container: live.agent.name });

  if (o.removeOrphans) {
    const wanted = new Set(manifest.services.map((s) => s.name));
    for (const c of live.containers) {
      const service = serviceOf(c, names);
      if (service === null || wanted.has(service)) continue;
      steps.push({ kind: 'remove_container', container: c.name, service, restore: previous.get(service) ?? null, restoreRunning: c.running });
    }
  }
  return { ok: true, steps };
}

/** Steps to bring Docker to the proposed manifest. previous: the applied manifest (null if none). */
export function planApply(live: LiveState, proposed: Manifest, previous: Manifest | null, o: PlanOptions = {}): PlanResult {
  return converge(live, proposed, { ...o, previous, removeOrphans: true });
}

/** After a boot or a `docker rm`: recreate what the applied manifest has and Docker lacks. */
export function planReconcile(live: LiveState, applied: Manifest, o: PlanOptions = {}): PlanResult {
  return converge(live, applied, { ...o, previous: applied, removeOrphans: false });
}

/**
 * The undo of an apply that failed: completed steps reversed, each replaced by its inverse; steps
 * that changed nothing (pulls, waits) have none. `failed`, the step that threw, is undone first
 * when it creates something (it may have half-happened: the executor ignores "no such" errors).
 */
export function planRollback(completed: readonly Step[], failed?: Step): Step[] {
  const done = failed && ['create_network', 'create_volume', 'create_container', 'connect_network'].includes(failed.kind) ? [...completed, failed] : [...completed];
  const created = new Set(done.flatMap((s) => (s.kind === 'create_container' ? [s.spec.name] : [])));
  const undo: Step[] = [];
  for (let i = done.length - 1; i >= 0; i--) {
    const s = done[i] as Step;
    switch (s.kind) {
      case 'create_network':
        undo.push({ kind: 'remove_network', network: s.network });
        break;
      case 'create_volume':
        undo.push({ kind: 'remove_volume', volume: s.volume });
        break;
      case 'create_container':
        undo.push({ kind: 'remove_container', container: s.spec.name, service: s.spec.service, restore: null, restoreRunning: false });
        break;
      case 'start_container':
        // A container this apply created is removed anyway; one it only started goes back to stopped.
        if (!created.has(s.container)) undo.push({ kind: 'stop_container', container: s.container, service: s.service });
        break;
      case 'remove_container':
        if (s.restore) {
          undo.push({ kind: 'create_container', spec: s.restore });
          if (s.restoreRunning) undo.push({ kind: 'start_container', container: s.container, service: s.service });
        }
        break;
      case 'connect_network':
        undo.push({ kind: 'disconnect_network', network: s.network, container: s.container });
        break;
      default:
        break;
    }
  }
  return undo;
}

/** The agent's `reset <svc>`: the service's container and volumes go, then come back empty. Only a
 * service of the applied manifest (the agent cannot add one); null for an unknown name. */
export function planReset(live: LiveState, applied: Manifest, service: string, o: PlanOptions = {}): Step[] | null {
  const s = applied.services.find((x) => x.name === service);
  if (!s) return null;
  const names = o.names ?? stackNames();
  const spec = containerSpec(s, names, o.vars ?? {});
  const steps: Step[] = [];
  if (live.containers.some((c) => c.name === spec.name)) steps.push({ kind: 'remove_container', container: spec.name, service, restore: null, restoreRunning: false });
  for (const v of s.volumes) {
    const volume = names.volume(service, v.name);
    if (live.volumes.includes(volume)) steps.push({ kind: 'remove_volume', volume });
  }
  for (const v of s.volumes) steps.push({ kind: 'create_volume', volume: names.volume(service, v.name), service, labels: { [LABEL_STACK]: names.network, [LABEL_SERVICE]: service } });
  if (!live.images.includes(s.image.ref)) steps.push(s.image.local ? { kind: 'require_local_image', image: s.image.ref } : { kind: 'pull_image', image: s.image.ref });
  steps.push({ kind: 'create_container', spec }, { kind: 'start_container', container: spec.name, service });
  const timeoutMs = healthWaitMs(s, o.maxWaitMs);
  steps.push(s.healthcheck ? { kind: 'wait_healthy', container: spec.name, service, timeoutMs } : { kind: 'wait_running', container: spec.name, service, timeoutMs });
  return steps;
}

/** The agent's `start <svc>` is a reconcile of that one service; `stop <svc>` stops its container. */
export function planStart(live: LiveState, applied: Manifest, service: string, o: PlanOptions = {}): PlanResult | null {
  const s = applied.services.find((x) => x.name === service);
  if (!s) return null;
  return converge({ ...live, agent: null }, { version: 1, services: [s] }, { ...o, previous: applied, removeOrphans: false });
}

export function planStop(live: LiveState, applied: Manifest, service: string, o: { names?: StackNames } = {}): Step[] | null {
  if (!applied.services.some((x) => x.name === service)) return null;
  const container = (o.names ?? stackNames()).container(service);
  return live.containers.some((c) => c.name === container && c.running) ? [{ kind: 'stop_container', container, service }] : [];
}

/** `down`: services and network go, volumes stay. destroy: volumes go too. */
export function planDown(live: LiveState, o: { names?: StackNames; volumes?: boolean } = {}): Step[] {
  const names = o.names ?? stackNames();
  const steps: Step[] = [];
  if (live.agent?.attached) steps.push({ kind: 'disconnect_network', network: names.network, container: live.agent.name });
  for (const c of live.containers) {
    const service = serviceOf(c, names);
    if (service !== null) steps.push({ kind: 'remove_container', container: c.name, service, restore: null, restoreRunning: false });
  }
  if (live.networks.some((n) => n.name === names.network)) steps.push({ kind: 'remove_network', network: names.network });
  if (o.volumes) {
    for (const v of live.volumes) if (v.startsWith(`${names.network}-`)) steps.push({ kind: 'remove_volume', volume: v });
  }
  return steps;
}

export function planDestroy(live: LiveState, o: { names?: StackNames } = {}): Step[] {
  return planDown(live, { ...o, volumes: true });
}

/** One line per step, for `apply --dry-run` and the controller's log. */
export function describeStep(s: Step): string {
  switch (s.kind) {
    case 'create_network':
      return `create internal network ${s.network}`;
    case 'create_volume':
      return `create volume ${s.volume}`;
    case 'pull_image':
      return `pull ${s.image}`;
    case 'require_local_image':
      return `check local image ${s.image}`;
    case 'create_container':
      return `create ${s.spec.name} (${s.spec.image}, alias ${s.spec.aliases.join(', ')})`;
    case 'start_container':
      return `start ${s.container}`;
    case 'stop_container':
      return `stop ${s.container}`;
    case 'remove_container':
      return `remove ${s.container}`;
    case 'wait_healthy':
      return `wait up to ${Math.round(s.timeoutMs / 1000)}s for ${s.service} to be healthy`;
    case 'wait_running':
      return `wait up to ${Math.round(s.timeoutMs / 1000)}s for ${s.service} to run`;
    case 'connect_network':
      return `attach ${s.container} to ${s.network}`;
    case 'disconnect_network':
      return `detach ${s.container} from ${s.network}`;
    case 'remove_volume':
      return `remove volume ${s.volume}`;
    case 'remove_network':
      return `remove network ${s.network}`;
  }
}
