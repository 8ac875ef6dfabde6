// Runs plan.ts Steps against the Docker Engine: reads LiveState, executes steps in order, waits for
// health against deadlines, and on any failure runs planRollback of what this run completed.
import { AGENT_CONTAINER } from '../docker/names.js';
import {
  connectNetwork,
  createContainer,
  createNetwork,
  createVolume,
  disconnectNetwork,
  inspectContainer,
  inspectImage,
  inspectNetwork,
  listContainers,
  listVolumes,
  pullImage,
  removeContainer,
  removeNetwork,
  removeVolume,
  startContainer,
  stopContainer,
} from '../docker/engine.js';
import { VibeboxError } from '../errors.js';
import { PollTimeout, pollUntil } from '../poll.js';
import type { Manifest } from './manifest.js';
import { serviceContainerBody } from './engine-body.js';
import { LABEL_STACK, describeStep, planRollback, stackNames, type LiveState, type StackNames, type Step } from './plan.js';

export type Log = (line: string) => void;

/** What Docker has for this stack now. `manifests`: whose images to look for. */
export async function readLive(manifests: (Manifest | null)[], names: StackNames = stackNames()): Promise<LiveState> {
  const net = await inspectNetwork(names.network);
  const volumes = await listVolumes(LABEL_STACK, names.network);
  const containers = (await listContainers(LABEL_STACK, names.network)).map((c) => ({
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    running: c.State === 'running',
    labels: c.Labels ?? {},
  }));
  const refs = [...new Set(manifests.flatMap((m) => (m ? m.services.map((s) => s.image.ref) : [])))];
  const images: string[] = [];
  for (const ref of refs) if (await inspectImage(ref)) images.push(ref);
  const agent = await inspectContainer(AGENT_CONTAINER);
  return {
    networks: net ? [{ name: names.network, internal: net.Internal }] : [],
    volumes,
    images,
    containers,
    agent: agent ? { name: AGENT_CONTAINER, attached: names.network in (agent.NetworkSettings.Networks ?? {}) } : null,
  };
}

export class StepFailed extends Error {
  constructor(
    readonly step: Step,
    message: string,
  ) {
    super(message);
  }
}

/** Poll until the container is healthy (or, without a healthcheck, running and still running 2 s later). */
async function waitFor(container: string, service: string, timeoutMs: number, health: boolean): Promise<void> {
  let runningSince: number | null = null;
  await pollUntil(
    async () => {
      const c = await inspectContainer(container);
      if (!c) throw new Error(`${service}: its container disappeared`);
      const st = c.State;
      if (!st.Running && (st.Status === 'exited' || st.Status === 'dead')) {
        throw new Error(`${service} exited with code ${st.ExitCode ?? '?'} before it was ready (vibebox stack logs ${service})`);
      }
      if (health) {
        const h = st.Health;
        if (h?.Status === 'unhealthy') {
          const last = h.Log?.[h.Log.length - 1];
          throw new Error(`${service} is unhealthy: healthcheck exit ${last?.ExitCode ?? '?'}${last?.Output.trim() ? `: ${last.Output.trim().slice(0, 200)}` : ''}`);
        }
        return h?.Status === 'healthy';
      }
      if (!st.Running) runningSince = null;
      else runningSince ??= Date.now();
      return runningSince !== null && Date.now() - runningSince >= 2000;
    },
    { deadline: Date.now() + timeoutMs, intervalMs: 1000, maxIntervalMs: 1000 },
  ).catch((e: unknown) => {
    if (e instanceof PollTimeout) throw new Error(`${service} was not ${health ? 'healthy' : 'running'} within ${Math.round(timeoutMs / 1000)} s`);
    throw e;
  });
}

export async function runStep(s: Step): Promise<void> {
  switch (s.kind) {
    case 'create_network':
      return createNetwork({ Name: s.network, Internal: true, Driver: 'bridge', Labels: s.labels, CheckDuplicate: true });
    case 'create_volume':
      return createVolume(s.volume, s.labels);
    case 'pull_image':
      return pullImage(s.image);
    case 'require_local_image':
      if (!(await inspectImage(s.image))) {
        throw new Error(`the image ${s.image} is not in this VM (the user builds it on the host: vibebox stack image ${s.image.split('/')[1]?.split(':')[0] ?? '<name>'} --apt …)`);
      }
      return;
    case 'create_container':
      await createContainer(s.spec.name, serviceContainerBody(s.spec));
      return;
    case 'start_container':
      return startContainer(s.container);
    case 'stop_container':
      return stopContainer(s.container);
    case 'remove_container':
      return removeContainer(s.container);
    case 'wait_healthy':
      return waitFor(s.container, s.service, s.timeoutMs, true);
    case 'wait_running':
      return waitFor(s.container, s.service, s.timeoutMs, false);
    case 'connect_network':
      return connectNetwork(s.network, s.container);
    case 'disconnect_network':
      return disconnectNetwork(s.network, s.container);
    case 'remove_volume':
      return removeVolume(s.volume);
    case 'remove_network':
      return removeNetwork(s.network);
  }
}

export type RunResult = { ok: true } | { ok: false; reason: string; rolledBack: string[]; rollbackErrors: string[] };

/**
 * Run the steps; on the first failure undo what this run did (reverse order, best effort: every
 * undo step is tried, failures are reported). rollback false: stop at the failure, undo nothing.
 */
export async function runSteps(steps: readonly Step[], log: Log, o: { rollback: boolean } = { rollback: true }): Promise<RunResult> {
  const done: Step[] = [];
  for (const s of steps) {
    log(describeStep(s));
    try {
      await runStep(s);
      done.push(s);
    } catch (e) {
      const reason = `${describeStep(s)} failed: ${(e as Error).message}`;
      log(reason);
      if (!o.rollback) return { ok: false, reason, rolledBack: [], rollbackErrors: [] };
      const undo = planRollback(done, s);
      const rolledBack: string[] = [];
      const rollbackErrors: string[] = [];
      for (const u of undo) {
        log(`rollback: ${describeStep(u)}`);
        try {
          await runStep(u);
          rolledBack.push(describeStep(u));
        } catch (ue) {
          rollbackErrors.push(`${describeStep(u)}: ${(ue as Error).message}`);
          log(`rollback: ${describeStep(u)} failed: ${(ue as Error).message}`);
        }
      }
      return { ok: false, reason, rolledBack, rollbackErrors };
    }
  }
  return { ok: true };
}

/** A service's container state for status/info: running, health. */
export async function serviceState(container: string): Promise<{ state: string; health: string | null }> {
  const c = await inspectContainer(container, 60_000);
  if (!c) return { state: 'missing', health: null };
  return { state: c.State.Status, health: c.State.Health?.Status ?? null };
}

export function stackError(message: string, hint: string): VibeboxError {
  return new VibeboxError('E_CONTAINER', message, hint);
}
