// The supervisor: the one background process of a running session. It owns QEMU, the egress
// proxy, virtiofsd, the agent channel, the reference count and the shutdown timer.
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { VibeboxError } from '../errors.js';
import { homePaths, projectPaths, runPaths, shortId, type RunPaths } from '../paths.js';
import { readSessionFile } from '../session/state.js';
import { updateIndex } from '../session/index-store.js';
import { touch } from '../session/index-file.js';
import { buildArgv, type FsShare } from '../../qemu/argv.js';
import { probeAccel, qemuBinary } from '../../qemu/accel.js';
import { checkDisk } from '../../qemu/disk.js';
import { prepareSessionDisk } from '../session/disk.js';
import { findPython, findVirtiofsd, gitWallsIn, NO_GIT_WALLS, statefulDirsIn, virtiofsdArgv } from '../../qemu/virtiofsd.js';
import { QmpClient } from '../../qemu/qmp.js';
import { AGENT_PORT_NAME, type AgentMessage, type MountSpec } from '../../guest/protocol.js';
import { AgentChannel } from './agent-channel.js';
import { ClientMessage, DataKind, type Status, type SupervisorMessage } from './protocol.js';
import { aliveAs, cmdline, readPid } from './pidfile.js';
import { findImage, kernelCmdline } from '../../images/build.js';
import { explain, explainText } from '../explain.js';
import { effectiveConfig } from '../approval/effective.js';
import { carryGrant } from '../approval/store.js';
import type { ResolvedConfig } from '../config/load.js';
import { EgressProxy } from '../../proxy/server.js';
import { removeSession } from '../session/remove.js';
import { setupCas } from './host-cas.js';

const log = (msg: string) => process.stderr.write(`${new Date().toISOString()} ${msg}\n`);

interface ClientConn {
  ws: WebSocket;
  execId: number | null;
  isRef: boolean;
}

function wsSend(ws: WebSocket, msg: SupervisorMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}

function wsData(ws: WebSocket, kind: number, b: Buffer): void {
  if (ws.readyState !== ws.OPEN) return;
  const out = Buffer.allocUnsafe(b.length + 1);
  out[0] = kind;
  b.copy(out, 1);
  ws.send(out);
}

/**
 * Kill what a supervisor that died left behind: QEMU, virtiofsd (and the server process it
 * forks), socat relays — every process whose command line names this session's run directory.
 * Where /proc is missing, fall back to the pid files.
 */
function killOrphans(rp: RunPaths): void {
  const pids = new Set<number>();
  if (existsSync('/proc/self/cmdline')) {
    for (const p of readdirSync('/proc')) {
      const pid = Number(p);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      if ((cmdline(pid) ?? '').includes(`${rp.dir}/`)) pids.add(pid);
    }
  } else {
    for (const f of [rp.qemuPid, ...Array.from({ length: 32 }, (_, i) => rp.virtiofsPid(i))]) {
      const pid = readPid(f);
      if (aliveAs(pid, rp.dir)) pids.add(pid);
    }
  }
  for (const pid of pids) {
    log(`killing orphaned process ${pid}: ${(cmdline(pid) ?? '').slice(0, 80)}`);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* raced with its exit */
    }
  }
}

export async function supervise(project: string): Promise<void> {
  const session = readSessionFile(project);
  if (!session) throw new VibeboxError('E_SESSION_NONE', `no session in ${project}`, 'run `vibebox` in the project first');
  const id = session.id;
  const home = homePaths();
  const pp = projectPaths(project);
  const rp = runPaths(id);
  mkdirSync(rp.dir, { recursive: true, mode: 0o700 });

  const other = readPid(rp.supervisorPid);
  if (other !== process.pid && aliveAs(other, '__supervise')) {
    log(`supervisor ${other} already runs this session; exiting`);
    return;
  }
  killOrphans(rp);
  for (const f of [rp.supervisorSock, rp.agentSock, rp.qmpSock, rp.egressSock]) rmSync(f, { force: true });
  writeFileSync(rp.supervisorPid, `${process.pid}\n`);
  log(`supervisor ${process.pid} for session ${id} in ${project}`);
  // Before the socket listens, so the client reports this line. Never 9p passthrough in place
  // of virtiofsd: it hides nothing and lets guest root make root-owned and setuid host files.
  const fsd = findVirtiofsd();
  if (!fsd) throw new VibeboxError('E_VIRTIOFSD_MISSING', 'virtiofsd is not installed', 'install the `virtiofsd` package (Debian 13, Ubuntu 24.04) or `qemu-system-common` (Debian 12)');
  const python = findPython();
  if (!python) throw new VibeboxError('E_TOOL_MISSING', 'python3 is not installed (it starts virtiofsd behind a seccomp filter)', 'install the `python3` package');

  const applyConfig = (): ResolvedConfig => {
    const eff = effectiveConfig(project, id);
    // What the guest-writable vibebox.toml asks for beyond the approval is not applied: say so.
    if (eff.unapproved.length) log(`not applied until approved on the host: ${eff.unapproved.join('; ')}`);
    return eff;
  };
  let cfg: ResolvedConfig = applyConfig();
  if (!session.image) throw new VibeboxError('E_IMAGE_MISSING', 'session has no image recorded', `delete ${pp.stateDir} and run vibebox again`);
  const image = await findImage(session.image.name, session.image.digest);
  if (!image) {
    throw new VibeboxError('E_IMAGE_MISSING', `image ${session.image.name}/${session.image.digest} of this session is gone`, 'run `vibebox image build`, or `vibebox delete` this session to start on the current image');
  }

  // ---- state
  let state: Status['state'] = 'starting';
  let bootMs: number | null = null;
  const t0 = Date.now();
  let stopping: Promise<void> | null = null;
  const clients = new Set<ClientConn>();
  let refs = 0;
  let shutdownTimer: NodeJS.Timeout | null = null;
  let nextExec = 1;
  const execOwner = new Map<number, ClientConn>();
  let agent: AgentChannel | null = null;
  let qemu: ChildProcess | null = null;
  const helpers: ChildProcess[] = [];
  let readyResolve!: () => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  ready.catch(() => undefined);
  let accel = 'unknown';
  const dirtyMarker = `${pp.stateDir}/.dirty`;
  let proxy: EgressProxy | null = null;
  let agentServer: Server | null = null;
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));

  const status = (): Status => ({
    id, project, state, refs, supervisorPid: process.pid, qemuPid: qemu?.pid ?? null, accel, bootMs,
  });

  // last_active is minute-grained for humans; a locked index write per exec would be wasted work
  // on the warm path, so attach/detach touch it at most every 10 s (and the stop always does).
  let lastTouch = 0;
  const touchIndex = (force = false): Promise<unknown> => {
    if (!force && Date.now() - lastTouch < 10_000) return Promise.resolve();
    lastTouch = Date.now();
    return updateIndex((idx) => touch(idx, id, new Date())).catch((e: Error) => log(`index update failed: ${e.message}`));
  };
  const activeTimer = setInterval(() => {
    if (refs > 0) void touchIndex(true);
  }, 60_000);
  activeTimer.unref();

  const scheduleShutdown = () => {
    if (shutdownTimer || stopping) return;
    const ms = cfg.session.auto_shutdown_ms;
    log(`no clients; shutting down in ${ms} ms unless one arrives`);
    shutdownTimer = setTimeout(() => void stop('idle'), ms);
  };
  const cancelShutdown = () => {
    if (shutdownTimer) {
      clearTimeout(shutdownTimer);
      shutdownTimer = null;
      log('client arrived; shutdown cancelled');
    }
  };

  // ---- clients (ws over a unix socket, mode 0600)
  const http = createHttpServer((_req, res) => {
    res.writeHead(426).end();
  });
  const wss = new WebSocketServer({ server: http, maxPayload: 8 * 1024 * 1024 });
  wss.on('connection', (ws) => {
    const c: ClientConn = { ws, execId: null, isRef: false };
    clients.add(c);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary) {
        if (buf[0] === DataKind.stdin && c.execId !== null) agent?.stdin(c.execId, buf.subarray(1));
        return;
      }
      let raw: unknown;
      try {
        raw = JSON.parse(buf.toString('utf8'));
      } catch {
        wsSend(ws, { type: 'error', code: 'E_PROTOCOL', message: 'message is not JSON' });
        return;
      }
      const r = ClientMessage.safeParse(raw);
      if (!r.success) {
        wsSend(ws, { type: 'error', code: 'E_PROTOCOL', message: `invalid message: ${r.error.issues[0]?.message ?? ''}` });
        return;
      }
      void onClient(c, r.data);
    });
    ws.on('close', () => {
      clients.delete(c);
      if (c.execId !== null) {
        // The client is gone: hang up its command, like a dropped ssh connection.
        agent?.send({ type: 'signal', id: c.execId, signal: 'SIGHUP' });
        execOwner.delete(c.execId);
      }
      if (c.isRef) {
        refs--;
        log(`client left; ${refs} attached`);
        void touchIndex();
        if (refs === 0) scheduleShutdown();
      }
    });
    ws.on('error', () => undefined);
  });

  async function onClient(c: ClientConn, m: ClientMessage): Promise<void> {
    switch (m.type) {
      case 'status':
        wsSend(c.ws, { type: 'status', status: status() });
        return;
      case 'stop':
        wsSend(c.ws, { type: 'ok' });
        void stop('requested');
        return;
      case 'reload':
        try {
          cfg = applyConfig();
          proxy?.setPolicy(cfg.network);
          log(`policy reloaded: ${cfg.network.mode} ${cfg.network.entries.length} entries`);
          wsSend(c.ws, { type: 'ok' });
        } catch (e) {
          const err = e instanceof VibeboxError ? e : new VibeboxError('E_INTERNAL', (e as Error).message);
          wsSend(c.ws, { type: 'error', code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}) });
        }
        return;
      case 'resize':
        if (c.execId !== null) agent?.send({ type: 'resize', id: c.execId, cols: m.cols, rows: m.rows });
        return;
      case 'signal':
        if (c.execId !== null) agent?.send({ type: 'signal', id: c.execId, signal: m.signal });
        return;
      case 'stdin_end':
        if (c.execId !== null) agent?.send({ type: 'stdin_end', id: c.execId });
        return;
      case 'exec': {
        if (c.isRef) return;
        if (stopping) {
          wsSend(c.ws, { type: 'error', code: 'E_STOPPING', message: 'the session is shutting down', hint: 'run the command again in a moment' });
          c.ws.close();
          return;
        }
        c.isRef = true;
        refs++;
        cancelShutdown();
        log(`client attached; ${refs} attached`);
        void touchIndex();
        if (state === 'starting') wsSend(c.ws, { type: 'progress', line: accel === 'unknown' ? 'booting the VM…' : `booting the VM (${accel})…` });
        try {
          await ready;
        } catch (e) {
          wsSend(c.ws, { type: 'error', code: 'E_VM_START', message: (e as Error).message, hint: `see ${pp.serialLog} and ${pp.supervisorLog}` });
          c.ws.close();
          return;
        }
        if (c.ws.readyState !== c.ws.OPEN || !agent) return;
        const execId = nextExec++;
        c.execId = execId;
        execOwner.set(execId, c);
        const shell = !m.argv;
        agent.send({
          type: 'exec',
          id: execId,
          argv: m.argv ?? ['/bin/bash', '-l'],
          env: m.env ?? {},
          cwd: m.cwd ?? '/workspace',
          user: m.user ?? 'vibe',
          ...(m.tty ? { pty: { cols: m.cols ?? 80, rows: m.rows ?? 24, term: m.term ?? 'xterm-256color' } } : {}),
        });
        if (shell) log(`shell ${execId} opened`);
        return;
      }
    }
  }

  function onAgent(m: AgentMessage): void {
    switch (m.type) {
      case 'hello': {
        bootMs = Date.now() - t0;
        log(`agent hello after ${bootMs} ms (guest uptime ${m.uptimeMs} ms, agent process started at ${m.agentStartMs} ms, kernel ${m.kernel}, node ${m.node})`);
        const mounts: MountSpec[] = shares.map((s, i) => {
          const host = cfg.mounts[i]!.host;
          const isFile = statSync(host).isFile();
          return { tag: s.tag, guest: cfg.mounts[i]!.guest, ro: s.readonly, fs: s.kind, ...(isFile ? { file: basename(host) } : {}) };
        });
        agent!.send({ type: 'setup', mounts, env: proxyEnv(), ...setupCas() });
        return;
      }
      case 'setup_done':
        if (m.ok) {
          state = 'running';
          log(`guest ready after ${Date.now() - t0} ms`);
          readyResolve();
        } else {
          readyReject(new Error(`guest setup failed: ${m.error ?? 'unknown error'}`));
          void stop('setup failed');
        }
        return;
      case 'started':
        return;
      case 'exit':
      case 'exec_error': {
        const c = execOwner.get(m.id);
        execOwner.delete(m.id);
        if (!c) return;
        if (m.type === 'exit') wsSend(c.ws, { type: 'exit', code: m.code, signal: m.signal });
        else wsSend(c.ws, { type: 'error', code: 'E_EXEC', message: m.message });
        c.execId = null;
        c.ws.close();
        return;
      }
      case 'request':
        onGuestRequest(m);
        return;
      case 'log':
        log(`agent ${m.level}: ${m.message}`);
        return;
    }
  }

  function onGuestRequest(m: Extract<AgentMessage, { type: 'request' }>): void {
    const reply = (exitCode: number, output: string) => agent?.send({ type: 'reply', reqId: m.reqId, ok: exitCode === 0, output, exitCode });
    const owner = m.execId !== null ? execOwner.get(m.execId) : undefined;
    switch (m.command) {
      case 'explain': {
        const e = explain(project, id, cfg);
        reply(0, m.args.includes('--json') ? JSON.stringify(e, null, 2) + '\n' : explainText(e));
        return;
      }
      case 'help':
        reply(0, '');
        return;
      case 'exit':
        if (!owner) {
          reply(1, ':exit works in a vibebox shell, not in a background process\n');
          return;
        }
        reply(0, '');
        wsSend(owner.ws, { type: 'detach' });
        if (owner.execId !== null) agent?.send({ type: 'signal', id: owner.execId, signal: 'SIGHUP' });
        owner.ws.close();
        return;
      case 'new':
        reply(0, 'replacing this session with a fresh one…\n');
        for (const c of clients) wsSend(c.ws, { type: 'reset', reattach: c === owner });
        void stop('new session requested', true);
        return;
    }
  }

  const proxyEnv = (): Record<string, string> => {
    const p = 'http://10.0.2.100:3128';
    return { HTTP_PROXY: p, HTTPS_PROXY: p, http_proxy: p, https_proxy: p, NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1' };
  };

  // ---- stop: agent shutdown → QMP system_powerdown → SIGKILL after 10 s
  async function stop(reason: string, resetAfter = false): Promise<void> {
    if (stopping) return stopping;
    stopping = (async () => {
      state = 'stopping';
      if (shutdownTimer) clearTimeout(shutdownTimer);
      log(`stopping: ${reason}`);
      readyReject(new Error(`the session stopped (${reason})`));
      const exited = qemu && qemu.exitCode === null && qemu.signalCode === null ? new Promise<void>((r) => qemu!.once('exit', () => r())) : Promise.resolve();
      let clean = false;
      if (qemu && qemu.exitCode === null) {
        agent?.send({ type: 'shutdown' });
        const timed = (ms: number) => new Promise<boolean>((r) => {
          const t = setTimeout(() => r(false), ms);
          void exited.then(() => {
            clearTimeout(t);
            r(true);
          });
        });
        clean = await timed(5000);
        if (!clean) {
          try {
            const q = await QmpClient.connect(rp.qmpSock);
            await q.execute('system_powerdown');
            q.close();
          } catch {
            /* QMP gone: go straight to the kill */
          }
          clean = await timed(5000);
        }
        if (!clean) {
          log('VM did not power off in 10 s; killing it');
          qemu.kill('SIGKILL');
          await exited;
        }
      } else clean = true;
      if (clean) rmSync(dirtyMarker, { force: true });
      await teardown();
      if (resetAfter) {
        carryGrant(project, id);
        await removeSession(project, id).catch((e: Error) => log(`reset failed: ${e.message}`));
      } else await touchIndex(true);
      log('stopped');
      finished();
    })();
    return stopping;
  }

  async function teardown(): Promise<void> {
    for (const c of clients) {
      wsSend(c.ws, { type: 'error', code: 'E_SUPERVISOR', message: 'the session stopped' });
      c.ws.close();
    }
    for (const h of helpers) if (h.exitCode === null) h.kill('SIGTERM');
    agent?.close();
    agentServer?.close();
    wss.close();
    http.close();
    await proxy?.close().catch(() => undefined);
    clearInterval(activeTimer);
    rmSync(rp.dir, { recursive: true, force: true });
  }

  process.on('SIGTERM', () => void stop('SIGTERM').then(() => process.exit(0)));
  process.on('SIGINT', () => void stop('SIGINT').then(() => process.exit(0)));
  process.on('SIGHUP', () => undefined);

  await new Promise<void>((res, rej) => {
    http.once('error', rej);
    http.listen(rp.supervisorSock, () => res());
  });
  chmodSync(rp.supervisorSock, 0o600);

  // ---- egress proxy: the VM's only way out
  proxy = new EgressProxy({ policy: cfg.network, logFile: pp.egressLog });
  await proxy.listen(rp.egressSock);

  // ---- accelerator, disk
  const probe = await probeAccel(image.kernel, `${home.home}/accel.json`);
  accel = probe.accel;
  for (const t of probe.tried) log(`accelerator probe: ${t.accel} ${t.ok ? 'works' : `failed (${t.detail})`} in ${t.ms} ms`);
  log(`accelerator: ${accel}`);
  await prepareSessionDisk(project, id, image.rootfs, cfg.vm.disk, log); // the header check and the host's record, before QEMU or qemu-img opens it
  if (existsSync(dirtyMarker)) {
    // The last run did not end cleanly: repair leaked clusters before booting again.
    const r = await checkDisk(pp.disk, image.rootfs, true);
    log(`disk check after an unclean stop: ${r.ok ? 'ok' : 'errors'} (leaks left ${r.leaks}, corruptions ${r.corruptions})`);
  }
  writeFileSync(dirtyMarker, '');

  // ---- mounts
  const shares: FsShare[] = cfg.mounts.map((m, i) => ({ tag: `vb${i}`, socket: rp.virtiofsSock(i), readonly: m.mode === 'ro', kind: 'virtiofs' }));
  const setpriv = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'SIGKILL', '--'] : [];
  // Keep the previous boot's console for post-mortems (QEMU truncates serial.log at start).
  if (existsSync(pp.serialLog)) renameSync(pp.serialLog, `${pp.serialLog}.1`);
  const logFd = openSync(pp.supervisorLog, 'a');
  const sockReady: Promise<void>[] = [];
  shares.forEach((s, i) => {
    if (s.kind !== 'virtiofs') return;
    const host = cfg.mounts[i]!.host;
    const stage = statSync(host).isFile() ? `${rp.dir}/fs${i}.d` : undefined;
    if (stage) mkdirSync(stage, { recursive: true });
    const git = stage || cfg.workspace?.writable_git_config ? NO_GIT_WALLS : gitWallsIn(host);
    const argv = virtiofsdArgv({ virtiofsd: fsd, python, socket: s.socket!, shared: host, readonly: s.readonly, ...(stage ? { stage } : {}), hide: stage ? [] : statefulDirsIn(host), git, guestUid: image.manifest.user.uid, guestGid: image.manifest.user.gid });
    const full = [...setpriv, ...argv];
    // A socket file left by a killed supervisor would look ready before this virtiofsd listens.
    rmSync(s.socket!, { force: true });
    const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', logFd, logFd], env: { ...process.env, VIBEBOX_RUN: rp.dir } });
    if (child.pid) writeFileSync(rp.virtiofsPid(i), `${child.pid}\n`);
    helpers.push(child);
    sockReady.push(waitForSocket(s.socket!, child));
  });
  await Promise.all(sockReady);

  // ---- the agent channel: we listen, QEMU connects as soon as it starts
  agentServer = createNetServer();
  agentServer.on('connection', (sock: Socket) => {
    if (agent) {
      sock.destroy();
      return;
    }
    agent = new AgentChannel(sock);
    agent.on('message', onAgent);
    agent.on('invalid', (why) => log(`agent channel: ${why}`));
    agent.on('data', (execId, kind, b) => {
      const c = execOwner.get(execId);
      if (c) wsData(c.ws, kind === 'stdout' ? DataKind.stdout : DataKind.stderr, b);
    });
  });
  await new Promise<void>((res) => agentServer!.listen(rp.agentSock, () => res()));

  const argv = buildArgv({
    name: `vibebox-${shortId(id)}`,
    accel: probe.accel,
    cpus: cfg.vm.cpus,
    memoryBytes: cfg.vm.memory,
    kernel: image.kernel,
    initrd: image.initrd,
    cmdline: kernelCmdline(image.manifest),
    disk: pp.disk,
    backing: image.rootfs,
    qmpSocket: rp.qmpSock,
    agentSocket: rp.agentSock,
    agentPortName: AGENT_PORT_NAME,
    serialLog: pp.serialLog,
    pidFile: rp.qemuPid,
    egressCommand: `socat - UNIX-CONNECT:${rp.egressSock}`,
    shares,
  });
  const full = [...setpriv, qemuBinary(), ...argv];
  log(`starting ${full.join(' ')}`);
  qemu = spawn(full[0]!, full.slice(1), { stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  qemu.on('exit', (code, sig) => {
    log(`qemu exited (${sig ?? code})`);
    if (!stopping) {
      readyReject(new Error(`the VM exited during boot (${sig ?? `code ${code}`})`));
      void stop('the VM exited').then(() => process.exit(1));
    }
  });
  // A guest that never says hello must not keep clients waiting forever.
  const bootTimeout = setTimeout(() => {
    if (state === 'starting') {
      readyReject(new Error(`the guest agent did not answer within ${BOOT_TIMEOUT_MS / 1000} s`));
      void stop('boot timeout');
    }
  }, BOOT_TIMEOUT_MS);
  bootTimeout.unref();
  // When no client comes at all (the one that started us died), still shut down.
  if (refs === 0) scheduleShutdown();
  await done;
}

// A boot takes ~10 s under TCG and ~1 s under KVM; two minutes means it is not coming.
const BOOT_TIMEOUT_MS = Number(process.env['VIBEBOX_BOOT_TIMEOUT_MS'] ?? 120_000);

function waitForSocket(path: string, child: ChildProcess): Promise<void> {
  return new Promise((res, rej) => {
    let delay = 2;
    const tick = () => {
      if (existsSync(path)) return res();
      if (child.exitCode !== null) return rej(new VibeboxError('E_VM_START', `virtiofsd exited with ${child.exitCode} before serving ${path}`, 'see .vibebox/supervisor.log'));
      delay = Math.min(delay * 2, 50);
      setTimeout(tick, delay);
    };
    tick();
  });
}
