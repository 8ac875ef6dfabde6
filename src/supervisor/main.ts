// The supervisor: the one background process of a running session. It wires parts that know
// nothing of each other: the VM driver (qemu/, built in driver-factory.ts), the clients hub (ws
// server, reference count, grace timer), client requests, agent events and guest requests
// (:commands), boot, suspend/resume, and the stop steps; plus the egress proxy and the agent
// channel. Their shared state is one Session (docs/architecture.md, Processes).
import { realpathSync, rmSync, writeFileSync } from 'node:fs';
import { VibeboxError } from '../errors.js';
import { homePaths, projectPaths, runPaths, savedStateRecordFile } from '../paths.js';
import { readSessionFile } from '../session/state.js';
import { updateIndex } from '../session/index-store.js';
import { touch } from '../session/index-file.js';
import { ForwardTable } from './forwards.js';
import { aliveAs, readPid } from './pidfile.js';
import type { Status } from './client-protocol.js';
import { findImage } from '../../images/build.js';
import { effectiveConfig } from '../approval/effective.js';
import type { ResolvedConfig } from '../config/load.js';
import { RefCount } from './refcount.js';
import { ClientsHub } from './clients-hub.js';
import { RotatingLog } from './rotating-log.js';
import { mkdirPrivate, tightenPrivateDir } from '../../qemu/private-file.js';
import { cleanLine, GuestLog } from './guest-text.js';
import { EventWriter, eventsFile } from './events.js';
import { bootTimeoutMs } from './env.js';
import { asVibeboxError, errorBody } from './error-reply.js';
import { createDriver } from './driver-factory.js';
import { Session } from './session.js';
import { handleClientMessage } from './client-requests.js';
import { handleAgentMessage } from './agent-events.js';
import { suspendVm } from './suspend-resume.js';
import { stopper, stopSteps, type StopFn } from './stop-steps.js';
import { boot } from './boot.js';
import { openRelay } from './relay-open.js';
import { sessionExplain } from './session-explain.js';
import { KeyInjection, policyWarnings } from '../keys/inject.js';

export async function supervise(project: string): Promise<void> {
  const session = readSessionFile(project);
  if (!session) throw new VibeboxError('E_SESSION_NONE', `no session in ${project}`, 'run `vibebox` in the project first');
  const events = new EventWriter(eventsFile(session.id));
  events.emit('starting');
  try {
    await superviseSession(project, session.id, events);
  } catch (e) {
    const err = asVibeboxError(e, 'E_SUPERVISOR');
    events.emit('failed', errorBody(err));
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
  const cfg: ResolvedConfig = applyConfig();
  if (!session.image) throw new VibeboxError('E_IMAGE_MISSING', 'session has no image recorded', `run vibebox again: it records the image before the supervisor starts (see ${pp.supervisorLog})`);
  const image = await findImage(session.image.name, session.image.digest);
  if (!image) {
    throw new VibeboxError('E_IMAGE_MISSING', `image ${session.image.name}/${session.image.digest} of this session is gone`, 'run `vibebox image build` if this vibebox made it, or restore it; the disk is kept');
  }

  const driver = createDriver({
    runDir: rp.dir,
    accelCache: `${home.home}/accel.json`,
    guestUid: image.manifest.user.uid,
    guestGid: image.manifest.user.gid,
    log,
    output: (line) => log(cleanLine(line)),
    env: process.env,
  });
  driver.cleanup();
  for (const f of [rp.supervisorSock, rp.agentSock, rp.egressSock]) rmSync(f, { force: true });
  writeFileSync(rp.supervisorPid, `${process.pid}\n`);
  log(`supervisor ${process.pid} for session ${id} in ${project}`);
  if (tightened.length) log(`made private (0600): ${tightened.join(', ')} in ${pp.stateDir}`);

  // ---- state
  // Keys stay on the host: the proxy puts them in for the rules' hosts (src/keys/inject.ts).
  const keys = KeyInjection.forSession(id, homePaths().home);
  for (const w of policyWarnings(keys.routes(cfg.network))) log(w);

  const s = new Session({ project, projectReal, id, paths: pp, run: rp, image, cfg, log, timing: process.env['VIBEBOX_TIMING'] === '1' });
  // ---- port forwards: [[ports]] at boot, `vibebox port` and kits at any time
  const forwards = new ForwardTable({
    openRelay: (fwdId, guest, container) => openRelay(s, fwdId, guest, container),
    closeRelay: (fwdId) => s.agent?.send({ type: 'forward_close', fwdId }),
    hostfwd: (op, host, guestPort) => driver.hostForward(op, host, guestPort),
    log,
  });

  // last_active is minute-grained for humans; a locked index write per exec would be wasted work
  // on the warm path, so attach/detach touch it at most every 10 s (and the stop always does).
  let lastTouch = 0;
  const touchIndex = (force = false): Promise<unknown> => {
    if (!force && Date.now() - lastTouch < 10_000) return Promise.resolve();
    lastTouch = Date.now();
    return updateIndex((idx) => touch(idx, id, new Date())).catch((e: Error) => log(`index update failed: ${e.message}`));
  };

  // Idle: save the VM for a resume rather than shut it down (VIBEBOX_SUSPEND=0: shut down).
  const refs = new RefCount({ graceMs: () => s.cfg.session.auto_shutdown_ms, onIdle: () => void stop('idle', false, process.env['VIBEBOX_SUSPEND'] !== '0'), log });
  const savedRecord = savedStateRecordFile(id);
  const activeTimer = setInterval(() => {
    if (refs.count > 0) void touchIndex(true);
  }, 60_000);
  activeTimer.unref();

  const status = (): Status => ({
    id, project, state: s.state, refs: refs.count, supervisorPid: process.pid, qemuPid: driver.status().pid, accel: driver.status().accel, bootMs: s.bootMs,
    forwards: forwards.list(),
  });

  const hub = new ClientsHub({
    refs,
    log,
    onMessage: (c, m) => void handleClientMessage(c, m, { session: s, hub, forwards, status, stop, applyConfig, touchIndex, keys }),
    onStdin: (c, b) => {
      if (c.execId !== null) s.agent?.stdin(c.execId, b);
    },
    onLeave: (c, execId) => {
      // The client is gone: hang up its command, like a dropped ssh connection.
      if (execId !== null) s.agent?.send({ type: 'signal', id: execId, signal: 'SIGHUP' });
      if (c.isRef) void touchIndex();
    },
    // A client that does not read must not make us buffer the guest's output without bound.
    onPressure: (paused) => s.agent?.pause(paused),
  });

  // The guest may send log frames at any rate and size: cap both.
  const guestLog = new GuestLog(log);

  const stop: StopFn = stopper(
    s,
    stopSteps({ session: s, driver, hub, refs, events, suspendVm: () => suspendVm({ session: s, driver, savedRecord }), touchIndex, activeTimer }),
  );
  const agentDeps = { session: s, hub, forwards, events, stop, explain: (json: boolean) => sessionExplain(s, forwards, json), guestLog };

  process.on('SIGTERM', () => void stop('SIGTERM').then(() => process.exit(0)));
  process.on('SIGINT', () => void stop('SIGINT').then(() => process.exit(0)));
  process.on('SIGHUP', () => undefined);

  await hub.listen(rp.supervisorSock);
  events.emit('listening');

  const started = await boot({
    keys,
    session: s,
    driver,
    hub,
    events,
    savedRecord,
    stop,
    onAgent: (m) => handleAgentMessage(m, agentDeps),
    bootTimeoutMs: bootTimeout,
    exit: (code) => process.exit(code),
  });
  if (!started) return;
  // When no client comes at all (the one that started us died), still shut down.
  refs.arm();
  await s.done;
}
