// The docker CLI as a child process, for the image builds: every call has a deadline, output can
// stream line by line, and a failure is one line naming the command and Docker's last words.
import { spawn } from 'node:child_process';
import { VibeboxError } from '../errors.js';

export const DOCKER = '/usr/bin/docker';

export interface DockerResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface DockerOptions {
  timeoutMs: number;
  /** Each output line (stdout and stderr) as it comes; stdout is then not collected. */
  onLine?: (line: string) => void;
}

/** Run `docker <args>`; resolves with the exit code (never rejects on a non-zero one). */
export function dockerRun(args: readonly string[], o: DockerOptions): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const partial = { out: '', err: '' };
    const feed = (which: 'out' | 'err', chunk: Buffer) => {
      const text = chunk.toString();
      if (which === 'err') stderr = (stderr + text).slice(-8192);
      if (!o.onLine) {
        if (which === 'out') stdout += text;
        return;
      }
      const lines = (partial[which] + text).split('\n');
      partial[which] = lines.pop() ?? '';
      // A progress line redraws itself with \r: only its last state is a line.
      for (const l of lines.map(lastState)) if (l.length > 0) o.onLine(l);
    };
    child.stdout.on('data', (c: Buffer) => feed('out', c));
    child.stderr.on('data', (c: Buffer) => feed('err', c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new VibeboxError('E_IMAGE_BUILD', `docker ${args[0] ?? ''} did not finish within ${Math.round(o.timeoutMs / 1000)} s`, 'see /var/log/dockerd.log in the VM'));
    }, o.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new VibeboxError('E_IMAGE_BUILD', `could not run ${DOCKER}: ${e.message}`, 'is docker installed in the guest image?', { cause: e }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (o.onLine) for (const l of [partial.out, partial.err].map(lastState)) if (l.length > 0) o.onLine(l);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
  });
}

function lastState(line: string): string {
  const parts = line.split('\r').filter((p) => p.length > 0);
  return parts[parts.length - 1] ?? '';
}

/** The last meaningful line of Docker's stderr, for a one-line error. */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  return (lines[lines.length - 1] ?? '').replace(/^Error( response from daemon)?:\s*/, '').slice(0, 300);
}

/** Run `docker <args>` and return its stdout; a non-zero exit is an E_IMAGE_BUILD naming `what`. */
export async function docker(args: readonly string[], o: DockerOptions & { what?: string }): Promise<string> {
  const r = await dockerRun(args, o);
  if (r.code !== 0) {
    throw new VibeboxError(
      'E_IMAGE_BUILD',
      `${o.what ?? `docker ${args[0] ?? ''}`} failed (exit ${r.code}): ${lastLine(r.stderr) || 'no output'}`,
      'see /var/log/dockerd.log in the VM',
    );
  }
  return r.stdout;
}
