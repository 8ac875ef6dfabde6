// One running session as the supervisor holds it: what it was started with (project, paths,
// image) and what changes while it runs (state, the agent channel, the config of the moment).
// The parts beside it (boot, client requests, agent events, suspend/resume, the stop steps) read
// and write these fields; main.ts creates one per process (docs/architecture.md, Processes).
import type { Server } from 'node:net';
import type { ProjectPaths, RunPaths } from '../paths.js';
import type { ResolvedConfig } from '../config/load.js';
import type { ImageInfo } from '../../images/build.js';
import type { EgressProxy } from '../../proxy/server.js';
import type { AgentMessage, MountSpec } from '../../guest/protocol.js';
import type { ResumeKey } from '../../qemu/saved-state.js';
import type { AgentChannel } from './agent-channel.js';
import type { Client } from './clients-hub.js';
import type { Status } from './client-protocol.js';

/** What the supervisor does with the agent channel (a fake in unit tests). */
export type AgentLink = Pick<AgentChannel, 'send' | 'stdin' | 'pause' | 'close'>;

export type SuspendDone = Extract<AgentMessage, { type: 'suspend_done' }>;

export interface SessionFacts {
  project: string;
  /** The project's real path: a client in another folder is refused. */
  projectReal: string;
  id: string;
  paths: ProjectPaths;
  run: RunPaths;
  image: ImageInfo;
  cfg: ResolvedConfig;
  log: (line: string) => void;
  /** VIBEBOX_TIMING=1: each exec's epoch marks in the log, for `npm run bench -- --explain`. */
  timing?: boolean;
}

export class Session {
  readonly project: string;
  readonly projectReal: string;
  readonly id: string;
  readonly paths: ProjectPaths;
  readonly run: RunPaths;
  readonly image: ImageInfo;
  readonly log: (line: string) => void;
  readonly timing: boolean;
  readonly execTimes = new Map<number, { recv: number; sent: number; started: number }>();
  readonly dirtyMarker: string;

  /** The approved config of the moment (a reload replaces it). */
  cfg: ResolvedConfig;
  state: Status['state'] = 'starting';
  bootMs: number | null = null;
  readonly t0 = Date.now();
  stopping: Promise<void> | null = null;
  nextExec = 1;
  agent: AgentLink | null = null;
  agentServer: Server | null = null;
  proxy: EgressProxy | null = null;
  mounts: MountSpec[] = [];
  // The CA certificates the host trusts, for the guest's setup: read while the VM boots.
  hostCas: { cas?: string } = {};
  /** The guest's answers to forward_open, by forward id. */
  readonly relayWaits = new Map<number, (m: { port?: number; error?: string }) => void>();
  forwardsStarted = false;
  resumeKey: ResumeKey | null = null;
  resumedVm = false;
  suspendAnswer: ((m: SuspendDone) => void) | null = null;
  /** Why a saved state on disk was not used (for the progress line), when there was one. */
  dropped: string | null = null;

  readonly ready: Promise<void>;
  readyResolve!: () => void;
  readyReject!: (e: Error) => void;
  readonly done: Promise<void>;
  finished!: () => void;

  // One progress line per client: boot, or resume once the saved state is verified, or boot and
  // why the saved state was not used. Only a load that fails after the check adds a second one.
  readonly startLine: Promise<string>;
  private startLineResolve!: (line: string) => void;
  private startLineSaid = false;
  readonly announced = new Set<Client>();

  constructor(f: SessionFacts) {
    this.project = f.project;
    this.projectReal = f.projectReal;
    this.id = f.id;
    this.paths = f.paths;
    this.run = f.run;
    this.image = f.image;
    this.cfg = f.cfg;
    this.log = f.log;
    this.timing = f.timing ?? false;
    this.dirtyMarker = `${f.paths.stateDir}/.dirty`;
    this.ready = new Promise<void>((res, rej) => {
      this.readyResolve = res;
      this.readyReject = rej;
    });
    this.ready.catch(() => undefined);
    this.done = new Promise<void>((r) => (this.finished = r));
    this.startLine = new Promise<string>((r) => (this.startLineResolve = r));
  }

  announce(line: string): void {
    if (!this.startLineSaid) {
      this.startLineSaid = true;
      this.startLineResolve(line);
    } else for (const c of this.announced) if (c.open) c.send({ type: 'progress', line });
  }
}

export const epochMs = (): number => performance.timeOrigin + performance.now();
