// One exec in the guest: pipes (child_process) or a PTY (node-pty), as user vibe or root.
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { statSync } from 'node:fs';
import type { HostMessage } from './protocol.js';
import type { ExecControl } from './exec-control.js';

type ExecMsg = Extract<HostMessage, { type: 'exec' }>;

interface PtyLike {
  pid: number;
  write(d: string | Buffer): void;
  resize(c: number, r: number): void;
  pause(): void;
  resume(): void;
  kill(sig?: string): void;
  onData(cb: (d: string | Buffer) => void): void;
  onExit(cb: (e: { exitCode: number; signal?: number }) => void): void;
}
interface PtyModule {
  spawn(file: string, args: string[], opts: Record<string, unknown>): PtyLike;
}

let ptyModule: PtyModule | null = null;
function loadPty(): PtyModule {
  // Loaded on first use only: most execs have no terminal, and start-up must stay lean.
  if (!ptyModule) ptyModule = createRequire(__filename)('node-pty') as PtyModule;
  return ptyModule;
}

export interface ExecSink {
  started(pid: number): void;
  stdout(b: Buffer): void;
  stderr(b: Buffer): void;
  exit(code: number | null, signal: string | null): void;
  error(message: string, reason?: 'not_found' | 'not_executable'): void;
}

/**
 * Find the command as execvp would, before spawning: a PTY child that fails to exec only exits 1
 * with perror text, so "not found" (127) and "not executable" (126) are decided here.
 */
export function resolveCommand(file: string, path: string, cwd: string): { path: string } | { reason: 'not_found' | 'not_executable' } {
  const candidates = file.includes('/') ? [file.startsWith('/') ? file : `${cwd}/${file}`] : path.split(':').filter(Boolean).map((d) => `${d}/${file}`);
  let sawNonExec = false;
  for (const c of candidates) {
    let st;
    try {
      st = statSync(c);
    } catch {
      continue;
    }
    if (st.isFile() && (st.mode & 0o111) !== 0) return { path: c };
    sawNonExec = true;
  }
  return { reason: sawNonExec ? 'not_executable' : 'not_found' };
}

export interface Identity {
  uid: number;
  gid: number;
  home: string;
  name: string;
}

export class Exec implements ExecControl {
  private child: ChildProcess | null = null;
  private pty: PtyLike | null = null;

  constructor(msg: ExecMsg, who: Identity, sink: ExecSink) {
    const env: Record<string, string> = {
      PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      HOME: who.home,
      USER: who.name,
      LOGNAME: who.name,
      SHELL: '/bin/bash',
      LANG: 'C.UTF-8',
      ...msg.env,
      VIBEBOX_EXEC_ID: String(msg.id),
    };
    // spawn's uid/gid drop supplementary groups; vibe needs none: sudo has its own rule for vibe
    // and dockerd's socket belongs to vibe's primary group. (A setpriv wrapper would restore the
    // groups but costs a whole extra exec, ~30 ms under emulation, on every command.)
    const [file, ...args] = msg.argv as [string, ...string[]];
    const ids = who.uid === 0 ? {} : { uid: who.uid, gid: who.gid };
    const found = resolveCommand(file, env['PATH'] ?? '', msg.cwd);
    if ('reason' in found) {
      // Reported after the constructor returns, as a spawn error would be.
      queueMicrotask(() => sink.error(`${file}: ${found.reason === 'not_found' ? 'command not found' : 'permission denied'}`, found.reason));
      return;
    }
    try {
      if (msg.pty) {
        env['TERM'] = msg.pty.term;
        const p = loadPty().spawn(file, args, { name: msg.pty.term, cols: msg.pty.cols, rows: msg.pty.rows, cwd: msg.cwd, env, encoding: null, ...ids });
        this.pty = p;
        sink.started(p.pid);
        p.onData((d) => sink.stdout(typeof d === 'string' ? Buffer.from(d) : d));
        p.onExit(({ exitCode, signal }) => {
          // node-pty reports the signal as a number; 0 means none.
          sink.exit(signal ? null : exitCode, signal ? `SIG${signal}` : null);
        });
      } else {
        const c = spawn(file, args, { cwd: msg.cwd, env, stdio: 'pipe', ...ids });
        this.child = c;
        c.on('error', (e) => sink.error(`${file}: ${e.message}`));
        if (c.pid !== undefined) sink.started(c.pid);
        c.stdout!.on('data', (b: Buffer) => sink.stdout(b));
        c.stderr!.on('data', (b: Buffer) => sink.stderr(b));
        c.stdin!.on('error', () => {
          /* the command closed its stdin: drop further input */
        });
        // 'close' waits for stdout/stderr to drain, so no output is lost after the exit status.
        c.on('close', (code, signal) => sink.exit(code, signal));
      }
    } catch (e) {
      sink.error(`${file}: ${(e as Error).message}`);
    }
  }

  /** Stop reading the command's output while the channel to the host is full (backpressure). */
  pause(): void {
    this.pty?.pause();
    this.child?.stdout?.pause();
    this.child?.stderr?.pause();
  }

  resume(): void {
    this.pty?.resume();
    this.child?.stdout?.resume();
    this.child?.stderr?.resume();
  }

  /** The exec's root process (for attributing :commands to it). */
  get pid(): number | null {
    return this.pty?.pid ?? this.child?.pid ?? null;
  }

  stdin(b: Buffer): void {
    if (this.pty) this.pty.write(b);
    else if (this.child?.stdin?.writable) this.child.stdin.write(b);
  }

  stdinEnd(): void {
    if (this.child?.stdin?.writable) this.child.stdin.end();
    // A PTY has no separate end of input: the client sends ^D as data.
  }

  resize(cols: number, rows: number): void {
    this.pty?.resize(cols, rows);
  }

  signal(sig: string): void {
    try {
      if (this.pty) process.kill(this.pty.pid, sig as NodeJS.Signals);
      else this.child?.kill(sig as NodeJS.Signals);
    } catch {
      /* already gone */
    }
  }
}
