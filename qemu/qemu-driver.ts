// The QEMU implementation of the VM driver: accelerator, virtiofsd per share, the QEMU process,
// its QMP socket. Processes are tracked by pid files and by their command lines naming the run
// directory, so a killed supervisor's leftovers are found by the next one.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants as fsc, createWriteStream, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { PACK_PY, UNPACK_PY } from './ram-pack.js';
import { DriverError, pipelineTo, runToolTo } from './tool-output.js';
import { touchPrivateFile } from './private-file.js';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { buildArgv, shareChardevId, shareDeviceId, sharePort, type Accel, type FsShare, type VmSpec } from './argv.js';
import { createHash } from 'node:crypto';
import { probeAccel, qemuBinary, type ProbeResult } from './accel.js';
import { gitWallsIn, NO_GIT_WALLS, statefulDirsIn, virtiofsdArgv, type Virtiofsd } from './virtiofsd.js';
import { QmpClient } from './qmp.js';
import { VibeboxError } from '../guest/errors.js';
import { aliveAs, cmdline, readPid } from './pidfile.js';
import { pollUntil, PollTimeout, withDeadline } from '../guest/poll.js';
import type { MountSpec } from '../guest/protocol.js';
import type { DriverResumeKey, ResumeOptions, ShareRequest, StopOptions, SuspendOptions, VmDriver, VmRequest, VmStatus } from './driver.js';
import { binaryIdentity } from './saved-state.js';
import { which } from './which.js';

export interface QemuDriverOptions {
  /** The file server for shares (there is no 9p fallback) and the python3 of its seccomp launcher. */
  virtiofsd: Virtiofsd;
  python: string;
  /** The session's run directory: sockets and pid files; every helper's command line names it. */
  runDir: string;
  /** Where the accelerator probe's answer is cached (per host and QEMU). */
  accelCache: string;
  /** One line about the driver's own doings. */
  log: (line: string) => void;
  /** Output of QEMU and virtiofsd (text the guest may influence: the caller sanitises it). */
  output: (line: string) => void;
  /** How long a file server may take to listen on its socket. */
  shareTimeoutMs?: number;
  /** The guest user the host user maps to on shares. */
  guestUid: number;
  guestGid: number;
  /** FUSE tuning options for every share (measurements only; see parseTuning). */
  virtiofsdTuning?: readonly string[];
}

export { DriverError };

export const qemuRunPaths = (dir: string) => ({
  qmpSock: join(dir, 'qmp.sock'),
  qemuPid: join(dir, 'qemu.pid'),
  fsSock: (n: number) => join(dir, `fs${n}.sock`),
  fsPid: (n: number) => join(dir, `fs${n}.pid`),
  serialSock: join(dir, 'serial.sock'),
  saveSock: join(dir, 'save.sock'),
});

/** What the guest mounts for one share; null (and why) when its host source is gone or unusable. */
export function mountSpecFor(s: ShareRequest, tag: string, fs: 'virtiofs' | '9p'): { spec: MountSpec } | { skip: string } {
  let isFile: boolean;
  try {
    const st = statSync(s.host);
    if (!st.isFile() && !st.isDirectory()) return { skip: `${s.host} is neither a file nor a directory` };
    isFile = st.isFile();
  } catch (e) {
    // The guest can delete an in-project mount source: that costs the mount, never the session.
    return { skip: `${s.host}: ${(e as Error).message}` };
  }
  return { spec: { tag, guest: s.guest, ro: s.readonly, fs, ...(isFile ? { file: basename(s.host) } : {}) } };
}

/** Bind 127.0.0.1:port for a moment; a one-line VibeboxError when that is not possible. */
export function probeLoopbackPort(port: number, guestPort: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EACCES') reject(new VibeboxError('E_PORT', `host port ${port} needs privileges to bind`, `use a port above 1023: vibebox port ${guestPort} <host-port>`));
      else if (e.code === 'EADDRINUSE') reject(new VibeboxError('E_PORT_IN_USE', `host port 127.0.0.1:${port} is in use`, `free it, or forward to another host port: vibebox port ${guestPort} <host-port>`));
      else reject(new VibeboxError('E_PORT', `cannot bind host port 127.0.0.1:${port}: ${e.message}`));
    });
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve()));
  });
}

export class QemuDriver implements VmDriver {
  private qemu: ChildProcess | null = null;
  private helpers: ChildProcess[] = [];
  private fsShares: FsShare[] = [];
  private exitCbs: ((why: string) => void)[] = [];
  /** A VM loading a saved state (or abandoned): its exit is the resume failing, nobody else is told. */
  private quietExit = false;
  private state: VmStatus['state'] = 'stopped';
  private accel: Accel | null = null;
  private serialServer: NetServer | null = null;
  private readonly paths: ReturnType<typeof qemuRunPaths>;
  private readonly setpriv = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'SIGKILL', '--'] : [];

  /** Guest RAM file (tmpfs, this user's only); its fd once QEMU mapped it and the name is gone. */
  private readonly ramPath: string | null;
  private ramFd: number | null = null;

  constructor(private o: QemuDriverOptions) {
    this.paths = qemuRunPaths(o.runDir);
    const dir = ramDir();
    this.ramPath = dir ? join(dir, `vibebox-${basename(o.runDir)}.ram`) : null;
  }

  private get sharedRam(): boolean {
    return this.fsShares.some((f) => f.kind === 'virtiofs') && this.ramPath !== null;
  }

  /**
   * Once QEMU has mapped the RAM file, its name goes (a killed session leaves nothing in tmpfs);
   * our descriptor keeps it readable for a save after QEMU quits.
   */
  private async detachRam(pid: number): Promise<void> {
    const path = this.ramPath!;
    // Not mapped within the deadline (or QEMU gone): no descriptor, so a save falls back to a shutdown.
    await pollUntil(
      () => {
        if (this.qemuGone()) return true;
        let maps = '';
        try {
          maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
        } catch {
          /* not yet */
        }
        if (!maps.includes(path)) return false;
        this.ramFd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
        rmSync(path, { force: true });
        return true;
      },
      { deadline: Date.now() + 60_000, intervalMs: 20, maxIntervalMs: 20 },
    ).catch((e: unknown) => {
      if (!(e instanceof PollTimeout)) throw e;
    });
  }

  cleanup(): void {
    const pids = new Set<number>();
    if (existsSync('/proc/self/cmdline')) {
      for (const p of readdirSync('/proc')) {
        const pid = Number(p);
        if (!Number.isInteger(pid) || pid === process.pid) continue;
        if ((cmdline(pid) ?? '').includes(`${this.o.runDir}/`)) pids.add(pid);
      }
    } else {
      for (const f of [this.paths.qemuPid, ...Array.from({ length: 32 }, (_, i) => this.paths.fsPid(i))]) {
        const pid = readPid(f);
        if (aliveAs(pid, this.o.runDir)) pids.add(pid);
      }
    }
    for (const pid of pids) {
      this.o.log(`killing orphaned process ${pid}: ${(cmdline(pid) ?? '').slice(0, 80)}`);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* raced with its exit */
      }
    }
    rmSync(this.paths.qmpSock, { force: true });
    if (this.ramPath) rmSync(this.ramPath, { force: true });
  }

  async setupShares(shares: ShareRequest[]): Promise<MountSpec[]> {
    const mounts: MountSpec[] = [];
    const waits: Promise<unknown>[] = [];
    shares.forEach((s, i) => {
      const tag = `vb${i}`;
      const m = mountSpecFor(s, tag, 'virtiofs');
      if ('skip' in m) {
        this.o.log(`mount ${s.guest} left out: ${m.skip}`);
        return;
      }
      mounts.push(m.spec);
      const socket = this.paths.fsSock(i);
      this.fsShares.push({ tag, socket, readonly: s.readonly, kind: 'virtiofs' });
      const stage = m.spec.file ? join(this.o.runDir, `fs${i}.d`) : undefined;
      if (stage) mkdirSync(stage, { recursive: true });
      const git = stage || s.writableGitConfig ? NO_GIT_WALLS : gitWallsIn(s.host);
      // A bind follows a link, so linked git metadata cannot be made read-only: refuse the share.
      if (git.refused.length) {
        throw new VibeboxError('E_MOUNT_FORBIDDEN', `git metadata in ${JSON.stringify(s.host)} is a symbolic link, which cannot be made read-only for the guest: ${git.refused.map((p) => JSON.stringify(p)).join(', ')}`, 'replace the link by the file or directory it points to, or approve [workspace] writable_git_config = true');
      }
      const argv = virtiofsdArgv({ virtiofsd: this.o.virtiofsd, python: this.o.python, socket, shared: s.host, readonly: s.readonly, ...(stage ? { stage } : {}), hide: stage ? [] : (s.hide ?? statefulDirsIn(s.host)), git, guestUid: this.o.guestUid, guestGid: this.o.guestGid, ...(this.o.virtiofsdTuning?.length ? { tuning: this.o.virtiofsdTuning } : {}) });
      const full = [...this.setpriv, ...argv];
      // A socket file left by a killed supervisor would look ready before this virtiofsd listens.
      rmSync(socket, { force: true });
      const child = this.spawnHelper(full, { VIBEBOX_RUN: this.o.runDir });
      if (child.pid) writeFileSync(this.paths.fsPid(i), `${child.pid}\n`);
      this.helpers.push(child);
      const deadline = Date.now() + (this.o.shareTimeoutMs ?? 30_000);
      waits.push(
        pollUntil(
          () => {
            if (existsSync(socket)) return true;
            if (child.exitCode !== null) throw new DriverError(`virtiofsd exited with ${child.exitCode} before serving ${s.host}`);
            return false;
          },
          { deadline, intervalMs: 2, maxIntervalMs: 50, what: `virtiofsd for ${s.host} listening` },
        ).catch((e: Error) => {
          throw e instanceof PollTimeout ? new DriverError(e.message) : e;
        }),
      );
    });
    await Promise.all(waits);
    return mounts;
  }

  /** Pick the accelerator (cached; may boot a kernel once per host). */
  async probe(kernel: string): Promise<ProbeResult> {
    const r = await probeAccel(kernel, this.o.accelCache);
    this.accel = r.accel;
    return r;
  }

  async start(req: VmRequest): Promise<void> {
    const accel = this.accel ?? (await this.probe(req.kernel)).accel;
    // Keep the previous boot's console for post-mortems (QEMU truncates serial.log at start).
    if (!req.console) {
      if (existsSync(req.serialLog)) renameSync(req.serialLog, `${req.serialLog}.1`);
      // QEMU truncates a file that is there and keeps its mode: 0600, not the umask's 0644.
      touchPrivateFile(req.serialLog);
    }
    if (this.sharedRam) {
      const ram = this.ramPath!;
      rmSync(ram, { force: true });
      if (req.incoming?.ram) {
        // Only the packed extents are written: the resumed VM holds only the RAM the guest had in use.
        await pipelineTo(['zstd', '-dcq', '--', req.incoming.ram], [this.o.python, '-c', UNPACK_PY, ram]);
      } else closeSync(openSync(ram, fsc.O_CREAT | fsc.O_EXCL | fsc.O_RDWR | fsc.O_NOFOLLOW, 0o600));
    }
    const argv = buildArgv(this.spec(req, accel));
    if (req.console) {
      // The console goes through us (size cap, control characters) rather than into a file QEMU
      // grows without bound: QEMU connects to our socket as the serial port's backend.
      const sink = req.console;
      rmSync(this.paths.serialSock, { force: true });
      const srv = createNetServer((s) => {
        s.on('data', (d: Buffer) => sink(d));
        s.on('error', () => undefined);
      });
      await new Promise<void>((res, rej) => {
        srv.once('error', rej);
        srv.listen(this.paths.serialSock, () => res());
      });
      this.serialServer = srv;
      const i = argv.indexOf('-serial');
      if (i >= 0) argv[i + 1] = `unix:${this.paths.serialSock}`;
    }
    this.quietExit = req.incoming !== undefined;
    await this.spawnQemu(argv);
    if (this.sharedRam && this.qemu?.pid) void this.detachRam(this.qemu.pid);
  }

  private spec(req: VmRequest, accel: Accel): VmSpec {
    return {
      name: req.name,
      accel,
      cpus: req.cpus,
      memoryBytes: req.memoryBytes,
      kernel: req.kernel,
      initrd: req.initrd,
      cmdline: req.cmdline,
      disk: req.disk,
      backing: req.backing,
      qmpSocket: this.paths.qmpSock,
      agentSocket: req.agentSocket,
      agentPortName: req.agentPortName,
      serialLog: req.serialLog,
      pidFile: this.paths.qemuPid,
      egressCommand: `socat - UNIX-CONNECT:${req.egressSocket}`,
      shares: this.fsShares,
      ...(this.sharedRam ? { memoryFile: this.ramPath! } : {}),
      ...(req.incoming ? { withoutShareDevices: true, incoming: 'defer' } : {}),
    };
  }

  async hostForward(op: 'add' | 'remove', host: number, guestPort?: number): Promise<void> {
    // HMP through QMP: slirp's hostfwd has no QMP command of its own. Bound to 127.0.0.1 only.
    const rule = op === 'add' ? `hostfwd_add net0 tcp:127.0.0.1:${host}-:${guestPort ?? host}` : `hostfwd_remove net0 tcp:127.0.0.1:${host}`;
    // slirp's failure text does not say why: a trial bind does (in use, or a privileged port).
    if (op === 'add') await probeLoopbackPort(host, guestPort ?? host);
    const qmp = await QmpClient.connect(this.paths.qmpSock);
    try {
      const out = String((await qmp.execute('human-monitor-command', { 'command-line': rule })) ?? '').trim();
      // HMP reports as text, not as a QMP error: add says nothing when it worked, remove says "… removed".
      if (op === 'add' && out !== '') throw new VibeboxError('E_PORT_IN_USE', `host port 127.0.0.1:${host} is in use`, `free it, or forward to another host port: vibebox port ${guestPort ?? host} <host-port>`);
      if (op === 'remove' && !/removed/.test(out)) throw new VibeboxError('E_PORT', `could not remove the forward of host port ${host}: ${out.split('\n')[0]}`);
    } finally {
      qmp.close();
    }
  }

  resumeKey(req: VmRequest): DriverResumeKey {
    return { qemu: binaryIdentity(realpathSync(which(qemuBinary()) ?? qemuBinary())), argv: this.resumeArgvKey(req) };
  }

  /** The command line without the shares or -incoming, hashed. */
  private resumeArgvKey(req: VmRequest): string {
    const { incoming: _incoming, ...spec } = this.spec(req, this.accel ?? 'tcg');
    // The RAM file's directory comes from the environment (XDG_RUNTIME_DIR): not part of the machine.
    const argv = buildArgv({ ...spec, ...(spec.memoryFile ? { memoryFile: 'ram' } : {}), withoutShareDevices: true });
    return createHash('sha256').update(JSON.stringify(argv)).digest('hex');
  }

  private async spawnQemu(argv: string[]): Promise<void> {
    const full = [...this.setpriv, qemuBinary(), ...argv];
    this.o.log(`starting ${full.join(' ')}`);
    // QEMU's last own word ("terminating on signal 15 from pid …") goes with its exit status.
    let lastWord = '';
    const q = this.spawnHelper(full, {}, (l) => {
      if (l.trim()) lastWord = l.trim().slice(0, 200);
    });
    this.qemu = q;
    this.state = 'starting';
    q.on('exit', (code, sig) => {
      this.state = 'exited';
      if (this.quietExit) return;
      const why = `${sig ?? `code ${code}`}${lastWord ? `: ${lastWord}` : ''}`;
      this.o.log(`qemu exited (${why})`);
      for (const cb of this.exitCbs) cb(why);
    });
    await new Promise<void>((res, rej) => {
      q.once('spawn', () => {
        this.state = 'running';
        res();
      });
      q.once('error', (e) => rej(new DriverError(`cannot start QEMU: ${e.message}`)));
    });
  }

  private spawnHelper(full: string[], env: Record<string, string>, onLine?: (l: string) => void): ChildProcess {
    const child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    for (const s of [child.stdout, child.stderr]) if (s) this.lines(s, onLine);
    return child;
  }

  private lines(s: Readable, onLine?: (l: string) => void): void {
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        onLine?.(buf.slice(0, nl));
        this.o.output(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
      // A line without an end is cut rather than held forever.
      if (buf.length > 4096) {
        this.o.output(buf);
        buf = '';
      }
    });
    s.on('end', () => {
      if (buf) this.o.output(buf);
    });
  }

  async stop(o: StopOptions): Promise<{ clean: boolean }> {
    const q = this.qemu;
    if (!q || q.exitCode !== null || q.signalCode !== null) return { clean: true };
    const stepMs = o.stepMs ?? 5000;
    const exited = new Promise<void>((r) => q.once('exit', () => r()));
    const within = (ms: number) =>
      new Promise<boolean>((r) => {
        const t = setTimeout(() => r(false), ms);
        void exited.then(() => {
          clearTimeout(t);
          r(true);
        });
      });
    o.askGuest();
    if (await within(stepMs)) return { clean: true };
    try {
      const qmp = await QmpClient.connect(this.paths.qmpSock);
      await qmp.execute('system_powerdown');
      qmp.close();
    } catch {
      /* QMP gone or silent: go straight to the kill */
    }
    if (await within(stepMs)) return { clean: true };
    this.o.log(`VM did not power off in ${(2 * stepMs) / 1000} s; killing it`);
    q.kill('SIGKILL');
    await exited;
    return { clean: false };
  }

  private qemuGone(): boolean {
    const q = this.qemu;
    return !q || q.exitCode !== null || q.signalCode !== null;
  }

  /** Poll query-migrate until it completes; throws on failure, a dead QEMU or the deadline. */
  private async migrated(qmp: QmpClient, timeoutMs: number, what: string): Promise<void> {
    await pollUntil(
      async () => {
        if (this.qemuGone()) throw new DriverError(`QEMU exited during the ${what}`);
        const r = (await qmp.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
        if (r.status === 'failed' || r.status === 'cancelled') throw new DriverError(`the ${what} failed${r['error-desc'] ? `: ${r['error-desc']}` : ''}`);
        return r.status === 'completed';
      },
      { deadline: Date.now() + timeoutMs, intervalMs: 5, maxIntervalMs: 50 },
    ).catch((e: unknown) => {
      throw e instanceof PollTimeout ? new DriverError(`the ${what} did not finish in ${timeoutMs / 1000} s`) : e;
    });
  }

  async suspend(o: SuspendOptions): Promise<{ bytes: number; ramBytes: number | null }> {
    const timeoutMs = o.timeoutMs ?? 120_000;
    const t0 = Date.now();
    // Shared RAM loaded through the stream would come back as 2 GiB of touched memory: no suspend.
    if (this.fsShares.length && !this.sharedRam) throw new DriverError('no private tmpfs directory for the guest RAM ($XDG_RUNTIME_DIR or /dev/shm/vibebox-<uid>)');
    const qmp = await QmpClient.connect(this.paths.qmpSock);
    let server: NetServer | null = null;
    try {
      // vhost-user-fs is unmigratable in QEMU 7.2: unplug every share (ACPI hot-unplug: the guest
      // acknowledges, which takes well under a second), then stop its file server.
      for (let i = 0; i < this.fsShares.length; i++) {
        await qmp.execute('device_del', { id: shareDeviceId(i) });
        const dev = shareDeviceId(i);
        await qmp.waitEvent((e) => e.event === 'DEVICE_DELETED' && (e.data as { device?: string } | undefined)?.device === dev, 15_000, `the guest to release share ${i}`);
        await qmp.execute('chardev-remove', { id: shareChardevId(i) });
      }
      for (const h of this.helpers) if (h.exitCode === null) h.kill('SIGTERM');
      this.helpers = [];
      const tUnplugged = Date.now();
      // A paused VM saves in one pass (no dirty pages to chase); zero pages cost a flag each.
      // RAM in a file stays out of the stream (x-ignore-shared): it is packed from the file after.
      const ramFd = this.ramFd;
      if (this.sharedRam && ramFd === null) throw new DriverError('the guest RAM file is not open');
      await qmp.execute('stop');
      await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 64 * 1024 ** 3 });
      if (ramFd !== null) await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] });
      rmSync(this.paths.saveSock, { force: true });
      rmSync(o.file, { force: true });
      const srv = createNetServer();
      server = srv;
      const written = new Promise<void>((res, rej) => {
        srv.once('connection', (sock) => {
          srv.close();
          // zstd reads the socket itself (its fd is handed over): Node never copies the stream.
          sock.pause();
          runToolTo('zstd', ['-q', '-1', '-T0', '-c'], sock, o.file).then(res, rej).finally(() => sock.destroy());
        });
      });
      written.catch(() => undefined);
      await new Promise<void>((res, rej) => {
        srv.once('error', rej);
        srv.listen(this.paths.saveSock, () => res());
      });
      await qmp.execute('migrate', { uri: `unix:${this.paths.saveSock}` });
      await this.migrated(qmp, timeoutMs, 'save');
      await withDeadline(written, timeoutMs, 'the saved state written');
      this.o.log(`save: shares unplugged in ${tUnplugged - t0} ms, state written in ${Date.now() - tUnplugged} ms`);
      const exited = new Promise<void>((r) => (this.qemuGone() ? r() : this.qemu!.once('exit', () => r())));
      await qmp.execute('quit').catch(() => undefined);
      await withDeadline(exited, 15_000, 'QEMU to quit after the save');
      let ramBytes: number | null = null;
      if (ramFd !== null) {
        rmSync(o.ramFile, { force: true });
        await pipelineTo([this.o.python, '-c', PACK_PY], ['zstd', '-q', '-1', '-T0', '-c'], ramFd, o.ramFile);
        ramBytes = statSync(o.ramFile).size;
      }
      this.o.log(`save: RAM packed ${Date.now() - tUnplugged} ms after the unplug`);
      return { bytes: statSync(o.file).size, ramBytes };
    } catch (e) {
      // Leave a VM that can still shut down cleanly: running again (its shares stay unplugged).
      if (!this.qemuGone()) {
        await qmp.execute('migrate_cancel').catch(() => undefined);
        await qmp.execute('cont').catch(() => undefined);
      }
      throw e;
    } finally {
      qmp.close();
      server?.close();
      rmSync(this.paths.saveSock, { force: true });
    }
  }

  async resume(o: ResumeOptions): Promise<void> {
    const timeoutMs = o.timeoutMs ?? 120_000;
    const t0 = Date.now();
    // QEMU makes its QMP socket a moment after it starts.
    await pollUntil(
      () => {
        if (this.qemuGone()) throw new DriverError('QEMU exited before it listened for the saved state');
        return existsSync(this.paths.qmpSock);
      },
      { deadline: Date.now() + 30_000, intervalMs: 2, maxIntervalMs: 20, what: 'the QMP socket of the resuming QEMU' },
    );
    const qmp = await QmpClient.connect(this.paths.qmpSock);
    try {
      // The disk stays inactive until `cont`: a state found bad before that has not touched it.
      const caps = [{ capability: 'late-block-activate', state: true }, ...(this.sharedRam ? [{ capability: 'x-ignore-shared', state: true }] : [])];
      await qmp.execute('migrate-set-capabilities', { capabilities: caps });
      await qmp.execute('migrate-incoming', { uri: o.uri });
      await this.migrated(qmp, timeoutMs, 'resume');
      const tLoaded = Date.now();
      if (!(await o.verified)) throw new DriverError('the saved state is not the one recorded (corrupted or replaced)');
      o.onLoaded?.();
      // The shares go back in while the guest is still paused: it sees them the moment it runs
      // (ACPI hotplug); the guest agent mounts them when the supervisor sends the setup.
      for (let i = 0; i < this.fsShares.length; i++) {
        const f = this.fsShares[i]!;
        await qmp.execute('chardev-add', { id: shareChardevId(i), backend: { type: 'socket', data: { addr: { type: 'unix', data: { path: f.socket ?? '' } }, server: false } } });
        await qmp.execute('device_add', { driver: 'vhost-user-fs-pci', id: shareDeviceId(i), chardev: shareChardevId(i), tag: f.tag, 'queue-size': 1024, bus: sharePort(i) });
      }
      await qmp.execute('cont');
      this.quietExit = false;
      this.o.log(`resume: state loaded in ${tLoaded - t0} ms, verified and shares plugged ${Date.now() - tLoaded} ms later`);
    } finally {
      qmp.close();
    }
  }

  async abandon(): Promise<void> {
    const q = this.qemu;
    this.serialServer?.close();
    this.serialServer = null;
    if (!q || this.qemuGone()) {
      this.quietExit = false;
      this.qemu = null;
      return;
    }
    this.quietExit = true;
    const exited = new Promise<void>((r) => q.once('exit', () => r()));
    q.kill('SIGKILL');
    await exited;
    this.quietExit = false;
    this.qemu = null;
    this.state = 'stopped';
    if (this.ramFd !== null) closeSync(this.ramFd);
    this.ramFd = null;
  }

  status(): VmStatus {
    return { state: this.state, pid: this.qemu?.pid ?? null, accel: this.accel ?? 'unknown' };
  }

  onExit(cb: (why: string) => void): void {
    this.exitCbs.push(cb);
  }

  close(): void {
    if (this.ramFd !== null) closeSync(this.ramFd);
    this.ramFd = null;
    if (this.ramPath) rmSync(this.ramPath, { force: true });
    this.serialServer?.close();
    for (const h of this.helpers) if (h.exitCode === null) h.kill('SIGTERM');
  }
}

/** `a | b` (stdin of a from `stdin`), both to their end; rejects with the stderr of the one that failed. */
/**
 * A tmpfs directory only this user can enter, for guest RAM files: $XDG_RUNTIME_DIR, else
 * /dev/shm/vibebox-<uid> (made 0700, refused when someone else owns it). null: none (memfd).
 */
export function ramDir(env: NodeJS.ProcessEnv = process.env): string | null {
  const uid = process.getuid?.() ?? 0;
  const ok = (d: string) => {
    try {
      const st = lstatSync(d);
      return st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0;
    } catch {
      return false;
    }
  };
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg && ok(xdg)) return xdg;
  if (!existsSync('/dev/shm')) return null;
  const d = `/dev/shm/vibebox-${uid}`;
  try {
    mkdirSync(d, { mode: 0o700 });
  } catch {
    /* there already */
  }
  return ok(d) ? d : null;
}
