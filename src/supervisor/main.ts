// The supervisor: the one background process of a running session. It wires three parts that know
// nothing of each other: the VM driver (qemu/), the clients hub (ws server, reference count, grace
// timer) and guest requests (:commands); plus the egress proxy and the agent channel.
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { existsSync, realpathSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { VibeboxError } from '../errors.js';
import { homePaths, projectPaths, runPaths, savedStateRecordFile, shortId } from '../paths.js';
import { readSessionFile } from '../session/state.js';
import { updateIndex } from '../session/index-store.js';
import { touch } from '../session/index-file.js';
import { checkDisk } from '../../qemu/disk.js';
import { prepareSessionDisk } from '../session/disk.js';
import { findPython, findVirtiofsd, parseTuning } from '../../qemu/virtiofsd.js';
import { QemuDriver } from '../../qemu/qemu-driver.js';
import type { VmDriver } from '../../qemu/driver.js';
import { ForwardTable } from './forwards.js';
import { aliveAs, readPid } from '../../qemu/pidfile.js';
import { AGENT_PORT_NAME, PROTOCOL_VERSION, type AgentMessage, type MountSpec } from '../../guest/protocol.js';
import { AgentChannel } from './agent-channel.js';
import type { ClientMessage, Status } from './protocol.js';
import { findImage, kernelCmdline } from '../../images/build.js';
import { explain, explainText } from '../explain.js';
import { effectiveConfig } from '../approval/effective.js';
import { containerSpec } from './container-spec.js';
import { carryGrant } from '../approval/store.js';
import type { ResolvedConfig } from '../config/load.js';
import { EgressProxy } from '../../proxy/server.js';
import { removeSession } from '../session/remove.js';
import { RefCount } from './refcount.js';
import { ClientsHub, type Client } from './clients-hub.js';
import { handleGuestRequest } from './guest-requests.js';
import { RotatingLog } from './rotating-log.js';
import { mkdirPrivate, tightenPrivateDir } from '../../qemu/private-file.js';
import { cleanLine, CleanLines, GuestLog } from './guest-text.js';
import { StringDecoder } from 'node:string_decoder';
import { EventWriter, eventsFile } from './events.js';
import { bootTimeoutMs } from './env.js';
import { hostCaBundle, setupCas } from './host-cas.js';
import { KeyInjection, policyWarnings } from '../keys/inject.js';
import { vibeboxVersion } from '../session/state.js';
import { qemuBinary } from '../../qemu/accel.js';
import { binaryIdentity, diskStamp, dropSavedState, fileSize, hashFile, incomingUri, ramFileOf, readRecord, sha256, staleReason, writeRecord, type ResumeKey, type SavedStateRecord } from '../../qemu/saved-state.js';
import type { VmRequest } from '../../qemu/driver.js';
import { which } from '../../qemu/which.js';

export function protocolMismatch(theirs: number, id: string): VibeboxError {
  return new VibeboxError(
    'E_PROTOCOL',
    `this session's image speaks guest agent protocol ${theirs}, this vibebox speaks ${PROTOCOL_VERSION}`,
    `start a fresh session on a current image: \`vibebox image build\`, then \`vibebox delete ${id}\` (its disk is lost) and run vibebox again; or install the vibebox that built it`,
  );
}

export async function supervise(project: string): Promise<void> {
  const session = readSessionFile(project);
  if (!session) throw new VibeboxError('E_SESSION_NONE', `no session in ${project}`, 'run `vibebox` in the project first');
  const events = new EventWriter(eventsFile(session.id));
  events.emit('starting');
  try {
    await superviseSession(project, session.id, events);
  } catch (e) {
    const err = e instanceof VibeboxError ? e : new VibeboxError('E_SUPERVISOR', (e as Error).message);
    events.emit('failed', { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) });
    throw err;
  }
}

async function superviseSession(project: string, id: string, events: EventWriter): Promise<void> {
  const session = readSessionFile(project)!;
  const projectReal = realpathSync(project);
  const home = homePaths();
  const pp = projectPaths(project);
  const rp = runPaths(id);
  // Only this user may read a session (its disk, its saved RAM, its logs, its sockets): a
  // session an older vibebox made 0755/0644 is tightened here, before anything is written.
  const tightened = tightenPrivateDir(pp.stateDir);
  for (const d of [home.home, home.runDir, rp.dir]) mkdirPrivate(d);
  const logFile = new RotatingLog(pp.supervisorLog);
  // VIBEBOX_TIMING=1: each exec's epoch marks in the log, for `npm run bench -- --explain`.
  const TIMING = process.env['VIBEBOX_TIMING'] === '1';
  const epochMs = () => performance.timeOrigin + performance.now();
  const execTimes = new Map<number, { recv: number; sent: number; started: number }>();
  const log = (msg: string) => logFile.write(`${new Date().toISOString()} ${msg}`);
  const bootTimeout = bootTimeoutMs(process.env);

  const other = readPid(rp.supervisorPid);
  if (other !== process.pid && aliveAs(other, '__supervise')) {
    log(`supervisor ${other} already runs this session; exiting`);
    return;
  }
  const applyConfig = (): ResolvedConfig => {
    const eff = effectiveConfig(project, id);
    // What the guest-writable vibebox.toml asks for beyond the approval is not applied: say so.
    if (eff.unapproved.length) log(`not applied until approved on the host: ${eff.unapproved.join('; ')}`);
    return eff;
  };
  let cfg: ResolvedConfig = applyConfig();
  if (!session.image) throw new VibeboxError('E_IMAGE_MISSING', 'session has no image recorded', `run vibebox again: it records the image before the supervisor starts (see ${pp.supervisorLog})`);
  const image = await findImage(session.image.name, session.image.digest);
  if (!image) {
    throw new VibeboxError('E_IMAGE_MISSING', `image ${session.image.name}/${session.image.digest} of this session is gone`, 'run `vibebox image build` if this vibebox made it, or restore it; the disk is kept');
  }

  // Before the socket listens, so the client reports this line. Never 9p passthrough in place
  // of virtiofsd: it hides nothing and lets guest root make root-owned and setuid host files.
  const virtiofsd = findVirtiofsd();
  if (!virtiofsd) throw new VibeboxError('E_VIRTIOFSD_MISSING', 'virtiofsd is not installed', 'install the `virtiofsd` package (Debian 13, Ubuntu 24.04) or `qemu-system-common` (Debian 12)');
  const python = findPython();
  if (!python) throw new VibeboxError('E_TOOL_MISSING', 'python3 is not installed (it starts virtiofsd behind a seccomp filter)', 'install the `python3` package');

  // Keys stay on the host: the proxy puts them in for the rules' hosts (src/keys/inject.ts).
  const keys = KeyInjection.forSession(id, home.home);
  for (const w of policyWarnings(keys.routes(cfg.network))) log(w);

  // A measurement knob (the bench's --fuse-options), held to caching options only.
  const tuning = parseTuning(process.env['VIBEBOX_VIRTIOFSD_OPTS']);
  if (!tuning.ok) throw new VibeboxError('E_USAGE', `VIBEBOX_VIRTIOFSD_OPTS: "${tuning.refused}" is not a tuning option`, 'use cache=, timeout=, [no_]readdirplus or [no_]writeback, comma-separated, or unset it');
  const qemuDriver = new QemuDriver({
    virtiofsd,
    python,
    virtiofsdTuning: tuning.options,
    runDir: rp.dir,
    accelCache: `${home.home}/accel.json`,
    guestUid: image.manifest.user.uid,
    guestGid: image.manifest.user.gid,
    log,
    output: (line) => log(cleanLine(line)),
  });
  const driver: VmDriver = qemuDriver;
  driver.cleanup();
  for (const f of [rp.supervisorSock, rp.agentSock, rp.egressSock]) rmSync(f, { force: true });
  writeFileSync(rp.supervisorPid, `${process.pid}\n`);
  log(`supervisor ${process.pid} for session ${id} in ${project}`);
  if (tightened.length) log(`made private (0600): ${tightened.join(', ')} in ${pp.stateDir}`);

  // ---- state
  let state: Status['state'] = 'starting';
  let bootMs: number | null = null;
  const t0 = Date.now();
  let stopping: Promise<void> | null = null;
  let nextExec = 1;
  let agent: AgentChannel | null = null;
  let agentServer: Server | null = null;
  let proxy: EgressProxy | null = null;
  let mounts: MountSpec[] = [];
  // The CA certificates the host trusts, for the guest's setup: read while the VM boots.
  let hostCas: { cas?: string } = {};
  // ---- port forwards (issue 13): [[ports]] at boot, `vibebox port` and kits at any time
  const relayWaits = new Map<number, (m: { port?: number; error?: string }) => void>();
  const forwards = new ForwardTable({
    openRelay: (fwdId, guest, container) =>
      new Promise<number>((resolve, reject) => {
        if (!agent) return reject(new VibeboxError('E_PORT', 'the guest is not connected'));
        const t = setTimeout(() => {
          relayWaits.delete(fwdId);
          reject(new VibeboxError('E_PORT', `the guest did not open a relay for port ${guest} within 10 s`));
        }, 10_000);
        relayWaits.set(fwdId, (m) => {
          clearTimeout(t);
          relayWaits.delete(fwdId);
          if (m.port) resolve(m.port);
          else reject(new VibeboxError('E_PORT', `the guest could not relay port ${guest}: ${cleanLine(m.error ?? 'unknown error', 200)}`));
        });
        agent.send({ type: 'forward_open', fwdId, guest, ...(container ? { container } : {}) });
      }),
    closeRelay: (fwdId) => agent?.send({ type: 'forward_close', fwdId }),
    hostfwd: (op, host, guestPort) => driver.hostForward(op, host, guestPort),
    log,
  });
  let forwardsStarted = false;
  let readyResolve!: () => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  ready.catch(() => undefined);
  const dirtyMarker = `${pp.stateDir}/.dirty`;
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));

  // last_active is minute-grained for humans; a locked index write per exec would be wasted work
  // on the warm path, so attach/detach touch it at most every 10 s (and the stop always does).
  let lastTouch = 0;
  const touchIndex = (force = false): Promise<unknown> => {
    if (!force && Date.now() - lastTouch < 10_000) return Promise.resolve();
    lastTouch = Date.now();
    return updateIndex((idx) => touch(idx, id, new Date())).catch((e: Error) => log(`index update failed: ${e.message}`));
  };

  // Idle: save the VM for a resume rather than shut it down (VIBEBOX_SUSPEND=0: shut down).
  const refs = new RefCount({ graceMs: () => cfg.session.auto_shutdown_ms, onIdle: () => void stop('idle', false, process.env['VIBEBOX_SUSPEND'] !== '0'), log });
  // ---- saved state (issue 14)
  const savedRecord = savedStateRecordFile(id);
  let resumeKey: ResumeKey | null = null;
  // One progress line per client: boot, or resume once the saved state is verified, or boot and
  // why the saved state was not used. Only a load that fails after the check adds a second one.
  let startLineResolve!: (line: string) => void;
  let startLineSaid = false;
  const startLine = new Promise<string>((r) => (startLineResolve = r));
  const announced = new Set<Client>();
  const announce = (line: string) => {
    if (!startLineSaid) {
      startLineSaid = true;
      startLineResolve(line);
    } else for (const c of announced) if (c.open) c.send({ type: 'progress', line });
  };
  const activeTimer = setInterval(() => {
    if (refs.count > 0) void touchIndex(true);
  }, 60_000);
  activeTimer.unref();

  const status = (): Status => ({
    id, project, state, refs: refs.count, supervisorPid: process.pid, qemuPid: driver.status().pid, accel: driver.status().accel, bootMs,
    forwards: forwards.list(),
  });

  const hub = new ClientsHub({
    refs,
    log,
    onMessage: (c, m) => void onClient(c, m),
    onStdin: (c, b) => {
      if (c.execId !== null) agent?.stdin(c.execId, b);
    },
    onLeave: (c, execId) => {
      // The client is gone: hang up its command, like a dropped ssh connection.
      if (execId !== null) agent?.send({ type: 'signal', id: execId, signal: 'SIGHUP' });
      if (c.isRef) void touchIndex();
    },
    // A client that does not read must not make us buffer the guest's output without bound.
    onPressure: (paused) => agent?.pause(paused),
  });

  async function onClient(c: Client, m: ClientMessage): Promise<void> {
    switch (m.type) {
      case 'status':
        c.send({ type: 'status', status: status() });
        return;
      case 'stop':
        c.send({ type: 'ok' });
        void stop(m.suspend ? 'suspend requested' : 'requested', false, m.suspend === true);
        return;
      case 'reload':
        try {
          cfg = applyConfig();
          proxy?.setPolicy(cfg.network);
          log(`policy reloaded: ${cfg.network.mode} ${cfg.network.entries.length} entries`);
          c.send({ type: 'ok' });
        } catch (e) {
          const err = e instanceof VibeboxError ? e : new VibeboxError('E_INTERNAL', (e as Error).message);
          c.send({ type: 'error', code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) });
        }
        return;
      case 'port': {
        // Typed on the host by the user: that is the approval. Session-only (not written anywhere).
        try {
          await ready;
          if (m.close) {
            if (!(await forwards.remove(m.host))) throw new VibeboxError('E_USAGE', `host port ${m.host} is not forwarded`, 'see `vibebox port` for the forwards');
          } else await forwards.add({ host: m.host, guest: m.guest ?? m.host, origin: m.origin ?? 'session', ...(m.container ? { container: m.container } : {}) });
          c.send({ type: 'ok' });
        } catch (e) {
          const err = e instanceof VibeboxError ? e : new VibeboxError('E_PORT', (e as Error).message);
          c.send({ type: 'error', code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) });
        }
        return;
      }
      case 'resize':
        if (c.execId !== null) agent?.send({ type: 'resize', id: c.execId, cols: m.cols, rows: m.rows });
        return;
      case 'signal':
        if (c.execId !== null) agent?.send({ type: 'signal', id: c.execId, signal: m.signal });
        return;
      case 'stdin_end':
        if (c.execId !== null) agent?.send({ type: 'stdin_end', id: c.execId });
        else c.earlyEnd = true;
        return;
      case 'exec': {
        if (c.isRef) return;
        const recv = epochMs();
        if (m.project !== undefined && m.project !== projectReal) {
          // A client in another folder that carries this session's id (a copy of the project).
          c.send({ type: 'error', code: 'E_SESSION_OTHER', message: `this session belongs to ${project}, not ${cleanLine(m.project)}`, hint: 'run vibebox in that folder' });
          c.close();
          return;
        }
        if (stopping) {
          c.send({ type: 'error', code: 'E_STOPPING', message: 'the session is shutting down', hint: 'run the command again in a moment' });
          c.close();
          return;
        }
        hub.addRef(c);
        void touchIndex();
        if (state === 'starting') {
          // The line says boot or resume (and why not a resume), once the supervisor knows.
          void startLine.then((line) => c.open && c.send({ type: 'progress', line }));
          announced.add(c);
        }
        try {
          await ready;
        } catch (e) {
          const err = e instanceof VibeboxError ? e : null;
          c.send({ type: 'error', code: err?.code ?? 'E_VM_START', message: (e as Error).message, hint: err?.hint ?? `see ${pp.serialLog} and ${pp.supervisorLog}` });
          c.close();
          return;
        }
        if (!c.open || !agent) return;
        const execId = nextExec++;
        hub.own(execId, c);
        if (TIMING) execTimes.set(execId, { recv, sent: 0, started: 0 });
        // A container exec carries the approved [image]/[container] of the moment (reloads included).
        const container = m.container ? { ...m.container, spec: containerSpec(cfg) } : undefined;
        agent.send({
          type: 'exec',
          id: execId,
          argv: m.argv ?? (container ? [] : ['/bin/bash', '-l']),
          ...(container ? { container } : {}),
          env: keys.guestEnv(m.env ?? {}, m.container?.pass),
          cwd: m.cwd ?? '/workspace',
          user: m.user ?? 'vibe',
          ...(m.tty ? { pty: { cols: m.cols ?? 80, rows: m.rows ?? 24, term: m.term ?? 'xterm-256color' } } : {}),
        });
        // Input the client sent while we awaited the boot goes after the exec, in order.
        if (hub.flushEarly(c)) agent.send({ type: 'stdin_end', id: execId });
        const x = execTimes.get(execId);
        if (x) x.sent = epochMs();
        if (!m.argv) log(`shell ${execId} opened`);
        return;
      }
    }
  }

  // The guest may send log frames at any rate and size: cap both.
  const guestLog = new GuestLog(log);
  function onAgent(m: AgentMessage): void {
    switch (m.type) {
      case 'hello': {
        bootMs = Date.now() - t0;
        log(cleanLine(`agent hello after ${bootMs} ms (guest uptime ${m.uptimeMs} ms, agent process started at ${m.agentStartMs} ms, kernel ${m.kernel}, node ${m.node})`));
        // After a resume the guest clock is behind by the suspension: the host's time, one round trip after the hello.
        if (resumedVm) agent!.send({ type: 'clock', epochMs: Date.now() });
        agent!.send({ type: 'setup', mounts, env: proxyEnv(), ...hostCas, local: cfg.workspace?.local ?? [] });
        return;
      }
      case 'setup_done':
        if (m.ok) {
          state = 'running';
          log(`guest ready after ${Date.now() - t0} ms`);
          events.emit('running');
          readyResolve();
          // First boot: the approved [[ports]]; after a resume: the same rules on the new QEMU.
          if (!forwardsStarted) {
            forwardsStarted = true;
            void forwards.addAll((cfg.ports ?? []).map((p) => ({ host: p.host, guest: p.guest, origin: 'config' as const })));
          } else void forwards.reopen();
        } else {
          readyReject(new Error(`guest setup failed: ${cleanLine(m.error ?? 'unknown error', 500)}`));
          void stop('setup failed');
        }
        return;
      case 'started': {
        const x = execTimes.get(m.id);
        if (x) x.started = epochMs();
        return;
      }
      case 'exit':
      case 'exec_error': {
        const x = execTimes.get(m.id);
        if (x) {
          execTimes.delete(m.id);
          log(`timing exec ${m.id} ${JSON.stringify({ ...x, exit: epochMs() })}`);
        }
        const c = hub.disown(m.id);
        if (!c) return;
        if (m.type === 'exit') c.send({ type: 'exit', code: m.code, signal: m.signal === null ? null : cleanLine(m.signal, 16) });
        else {
          const code = m.reason === 'not_found' ? 'E_EXEC_NOT_FOUND' : m.reason === 'not_executable' ? 'E_EXEC_NOT_EXECUTABLE' : 'E_EXEC';
          c.send({ type: 'error', code, message: cleanLine(m.message, 500) });
        }
        c.close();
        return;
      }
      case 'request': {
        const r = handleGuestRequest(m, {
          explain: (json) => {
            const e = explain(project, id, cfg, forwards.list());
            return json ? JSON.stringify(e, null, 2) + '\n' : explainText(e);
          },
          ownerOf: (execId) => hub.ownerOf(execId),
          clients: () => hub.clients,
          hangUp: (execId) => agent?.send({ type: 'signal', id: execId, signal: 'SIGHUP' }),
          replaceSession: () => void stop('new session requested', true),
        });
        agent?.send({ type: 'reply', reqId: m.reqId, ok: r.exitCode === 0, output: r.output, exitCode: r.exitCode });
        return;
      }
      case 'log':
        guestLog.frame(m.level, m.message);
        return;
      case 'suspend_done':
        suspendAnswer?.(m);
        return;
      case 'forward_ready':
        relayWaits.get(m.fwdId)?.({ ...(m.port !== undefined ? { port: m.port } : {}), ...(m.error !== undefined ? { error: m.error } : {}) });
        return;
    }
  }
  let resumedVm = false;
  let suspendAnswer: ((m: Extract<AgentMessage, { type: 'suspend_done' }>) => void) | null = null;

  /** Save the VM (agent unmounts, driver unplugs and migrates); false: the caller shuts it down. */
  async function suspendVm(): Promise<boolean> {
    const a = agent;
    if (!a || !resumeKey || state !== 'stopping' || bootMs === null) return false;
    if (!which('zstd')) {
      log('suspend needs zstd (not installed): shutting down instead');
      return false;
    }
    const t = Date.now();
    const tmp = `${pp.savedState}.tmp`;
    try {
      const answer = await new Promise<Extract<AgentMessage, { type: 'suspend_done' }>>((res, rej) => {
        const timer = setTimeout(() => rej(new Error('the guest agent did not unmount its shares in 60 s')), 60_000);
        suspendAnswer = (m) => {
          clearTimeout(timer);
          res(m);
        };
        a.send({ type: 'suspend' });
      });
      if (!answer.ok) throw new Error(`the guest could not unmount its shares: ${cleanLine(answer.error ?? '', 300)}`);
      log(`suspend: the guest unmounted its shares in ${Date.now() - t} ms`);
      if (answer.lazy.length) log(cleanLine(`suspend: in use, detached lazily: ${answer.lazy.join(', ')}`, 500));
      const ramTmp = `${ramFileOf(pp.savedState)}.tmp`;
      const { bytes, ramBytes } = await driver.suspend({ file: tmp, ramFile: ramTmp });
      const disk = await diskStamp(pp.disk);
      if (!disk) throw new Error('the disk is gone');
      const [sha, ramSha] = await Promise.all([hashFile(tmp), ramBytes === null ? null : hashFile(ramTmp)]);
      const ram = ramBytes === null || ramSha === null ? null : { bytes: ramBytes, sha256: ramSha };
      const rec: SavedStateRecord = { schema: 1, key: resumeKey, disk, bytes, sha256: sha, ram, nextExec, savedAt: new Date().toISOString(), saveMs: Date.now() - t };
      // Guest memory is for this user's eyes only: the driver wrote both files into files it
      // created 0600 (qemu/private-file.ts), never a wider mode fixed after the fact.
      if (ram) renameSync(ramTmp, ramFileOf(pp.savedState));
      renameSync(tmp, pp.savedState);
      writeRecord(savedRecord, rec);
      log(`suspended in ${rec.saveMs} ms: device state ${(bytes / 1e6).toFixed(1)} MB, RAM ${((ramBytes ?? 0) / 1e6).toFixed(1)} MB (zstd) in ${pp.stateDir}`);
      return true;
    } catch (e) {
      suspendAnswer = null;
      rmSync(tmp, { force: true });
      log(`suspend failed, shutting down instead: ${cleanLine((e as Error).message, 500)}`);
      return false;
    }
  }

  const proxyEnv = (): Record<string, string> => {
    const p = 'http://10.0.2.100:3128';
    return { HTTP_PROXY: p, HTTPS_PROXY: p, http_proxy: p, https_proxy: p, NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1' };
  };

  // ---- stop: agent shutdown → ACPI power-down → kill (the driver's steps)
  async function stop(reason: string, resetAfter = false, suspend = false): Promise<void> {
    if (stopping) return stopping;
    const wasRunning = state === 'running';
    stopping = (async () => {
      state = 'stopping';
      refs.disarm();
      log(`stopping: ${reason}`);
      readyReject(new Error(`the session stopped (${reason})`));
      // A saved state was used up (or dropped) when this VM started; a suspend writes a new one.
      // A start-up that failed before that keeps it for the next start.
      const suspended = suspend && wasRunning && (await suspendVm());
      const { clean } = suspended ? { clean: true } : await driver.stop({ askGuest: () => agent?.send({ type: 'shutdown' }) });
      if (clean) rmSync(dirtyMarker, { force: true });
      await teardown();
      if (resetAfter) {
        carryGrant(project, id);
        await removeSession(project, id).catch((e: Error) => log(`reset failed: ${e.message}`));
        rmSync(eventsFile(id), { force: true });
      } else await touchIndex(true);
      log('stopped');
      events.emit('stopped');
      finished();
    })();
    return stopping;
  }

  async function teardown(): Promise<void> {
    hub.closeAll({ type: 'error', code: 'E_SUPERVISOR', message: 'the session stopped' });
    driver.close();
    agent?.close();
    agentServer?.close();
    hub.close();
    await proxy?.close().catch(() => undefined);
    clearInterval(activeTimer);
    rmSync(rp.dir, { recursive: true, force: true });
  }

  /** Why a saved state on disk was not used (for the progress line), when there was one. */
  let dropped: string | null = null;
  async function keyNow(req: VmRequest): Promise<ResumeKey> {
    return {
      vibebox: vibeboxVersion(),
      protocol: PROTOCOL_VERSION,
      qemu: binaryIdentity(realpathSync(which(qemuBinary()) ?? qemuBinary())),
      image: image!.manifest.digest,
      config: sha256(JSON.stringify(cfg)),
      argv: driver.resumeArgvKey(req),
    };
  }
  async function savedStatePlan(req: VmRequest): Promise<SavedStateRecord | null> {
    const rec = readRecord(savedRecord);
    const bytes = fileSize(pp.savedState);
    if (!rec && bytes === null) return null;
    const why = !rec ? 'no host record of it' : staleReason(rec, await keyNow(req), await diskStamp(pp.disk), bytes, fileSize(ramFileOf(pp.savedState)));
    if (why === null) return rec;
    dropped = why;
    log(`saved state not used: ${why}`);
    dropSavedState(savedRecord, pp.savedState);
    return null;
  }

  process.on('SIGTERM', () => void stop('SIGTERM').then(() => process.exit(0)));
  process.on('SIGINT', () => void stop('SIGINT').then(() => process.exit(0)));
  process.on('SIGHUP', () => undefined);

  await hub.listen(rp.supervisorSock);
  events.emit('listening');

  try {
    // ---- egress proxy: the VM's only way out
    proxy = new EgressProxy({ policy: cfg.network, logFile: pp.egressLog, intercept: keys.proxyConfig(hostCaBundle()) });
    await proxy.listen(rp.egressSock);

    // ---- accelerator, disk
    const probe = await qemuDriver.probe(image.kernel);
    for (const t of probe.tried) log(`accelerator probe: ${t.accel} ${t.ok ? 'works' : `failed (${t.detail})`} in ${t.ms} ms`);
    log(`accelerator: ${probe.accel}`);
    // The header check and the host's record, before QEMU or qemu-img opens the disk.
    await prepareSessionDisk(project, id, image.rootfs, cfg.vm.disk, log);
    if (existsSync(dirtyMarker)) {
      // The last run did not end cleanly: repair leaked clusters before booting again.
      const r = await checkDisk(pp.disk, image.rootfs, true);
      log(`disk check after an unclean stop: ${r.ok ? 'ok' : 'errors'} (leaks left ${r.leaks}, corruptions ${r.corruptions})`);
    }
    writeFileSync(dirtyMarker, '');

    // ---- mounts: computed once, before boot (the guest may delete a source later)
    const writableGit = cfg.workspace?.writable_git_config === true;
    mounts = await driver.setupShares(cfg.mounts.map((m) => ({ host: m.host, guest: m.guest, readonly: m.mode === 'ro', writableGitConfig: writableGit })));

    // ---- resume or boot: a saved state is used only when everything it was saved against matches
    const vmReq: VmRequest = {
      name: `vibebox-${shortId(id)}`,
      cpus: cfg.vm.cpus,
      memoryBytes: cfg.vm.memory,
      kernel: image.kernel,
      initrd: image.initrd,
      cmdline: kernelCmdline(image.manifest),
      disk: pp.disk,
      backing: image.rootfs,
      agentSocket: rp.agentSock,
      agentPortName: AGENT_PORT_NAME,
      egressSocket: rp.egressSock,
      serialLog: pp.serialLog,
    };
    const resumable = await savedStatePlan(vmReq);
    if (resumable) nextExec = resumable.nextExec;
    const bootLine = (why?: string) => `booting the VM (${probe.accel}${why ? `; saved state not used: ${why}` : ''})…`;
    if (!resumable) announce(bootLine(dropped ?? undefined));

    // ---- the agent channel: we listen, QEMU connects as soon as it starts
    agentServer = createNetServer();
    agentServer.on('connection', (sock: Socket) => {
      if (agent) {
        sock.destroy();
        return;
      }
      agent = new AgentChannel(sock);
      agent.on('message', onAgent);
      agent.on('invalid', (why) => log(`agent channel: ${cleanLine(why, 200)}`));
      agent.on('mismatch', (theirs) => {
        // An image built by another vibebox: say what to do now, not after the boot timeout.
        const err = protocolMismatch(theirs, id);
        log(err.message);
        readyReject(err);
        void stop('agent protocol mismatch');
      });
      agent.on('data', (execId, kind, b) => hub.data(execId, kind, b));
    });
    await new Promise<void>((res) => agentServer!.listen(rp.agentSock, () => res()));

    // The console log: the guest writes it, so it is capped (one old file) and cleaned like any guest text.
    const serialDecoder = new StringDecoder('utf8');
    const serialLines = new CleanLines();
    // A new boot, a new file; the previous boot's console stays as serial.log.1 for post-mortems.
    const serialLog = new RotatingLog(pp.serialLog, 8 * 1024 * 1024, { fresh: true });
    // The console's last lines name why a boot died (a kernel panic, the initrd's "cannot mount"):
    // they go into the error, so a failure in CI explains itself after its logs are gone.
    let consoleTail: string[] = [];
    const keepTail = (text: string) => {
      if (!text) return text;
      consoleTail = [...consoleTail, ...text.split('\n').filter((l) => l.trim())].slice(-3);
      return text;
    };
    driver.onExit((why) => {
      if (!stopping) {
        keepTail(serialLines.flush());
        const last = consoleTail.length ? `; console: ${cleanLine(consoleTail.join(' | '), 400)}` : '';
        readyReject(new Error(`the VM exited during boot (${why}${last})`));
        void stop('the VM exited').then(() => process.exit(1));
      }
    });
    const consoleSink = (chunk: Buffer) => serialLog.append(keepTail(serialLines.push(serialDecoder.write(chunk))));
    let resumed = false;
    if (resumable) {
      const tr = Date.now();
      try {
        // The file is hashed while QEMU loads it; the guest runs only when both agree.
        const ramFile = ramFileOf(pp.savedState);
        const verified = Promise.all([hashFile(pp.savedState), resumable.ram ? hashFile(ramFile) : null]).then(
          ([h, r]) => h === resumable.sha256 && r === (resumable.ram?.sha256 ?? null),
          () => false,
        );
        void verified.then((ok) => ok && announce(`resuming the VM (${probe.accel})…`));
        await driver.start({ ...vmReq, console: consoleSink, incoming: { ram: resumable.ram ? ramFile : null } });
        await driver.resume({ uri: incomingUri(pp.savedState), verified, onLoaded: () => dropSavedState(savedRecord, pp.savedState) });
        resumed = true;
        log(`resumed from the saved state in ${Date.now() - tr} ms`);
      } catch (e) {
        const why = cleanLine((e as Error).message, 300);
        log(`resume failed, booting instead: ${why}`);
        await driver.abandon();
        // The abandoned QEMU's channel: the booting one connects anew.
        (agent as AgentChannel | null)?.close();
        agent = null;
        dropSavedState(savedRecord, pp.savedState);
        announce(bootLine(`it could not be loaded (${why})`));
      }
    }
    // The agent never noticed the save: it says hello again, gets the time and the setup (mounts).
    resumedVm = resumed;
    if (resumed) (agent as AgentChannel | null)?.send({ type: 'resume' });
    else await driver.start({ ...vmReq, console: consoleSink });
    resumeKey = { ...(await keyNow(vmReq)) };
    hostCas = keys.withCa(setupCas());
  } catch (e) {
    // Clients waiting for the boot get the reason; nothing is left running.
    const err = e instanceof VibeboxError ? e : new VibeboxError('E_VM_START', (e as Error).message, `see ${pp.supervisorLog}`);
    log(`start-up failed: ${err.message}`);
    events.emit('failed', { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) });
    readyReject(err);
    await stop('start-up failed');
    return;
  }
  // A guest that never says hello must not keep clients waiting forever.
  const bootTimer = setTimeout(() => {
    if (state === 'starting') {
      readyReject(new Error(`the guest agent did not answer within ${bootTimeout / 1000} s`));
      void stop('boot timeout');
    }
  }, bootTimeout);
  bootTimer.unref();
  // When no client comes at all (the one that started us died), still shut down.
  refs.arm();
  await done;
}
