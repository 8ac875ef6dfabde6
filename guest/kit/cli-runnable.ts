// The built-in adapter for headless agent CLIs: one process per prompt (e.g. `claude -p <text>`),
// its stdout and stderr streamed as events, its stdout the final message. Abort (or the server
// giving up on the turn) kills the whole process group, so a CLI's own children go too.
import { spawn } from 'node:child_process';
import { KitError } from './errors.js';
import type { KitEvent, KitPrompt, RunContext, RunFn } from './runnable.js';

export interface CliRunnableOptions {
  command: string;
  /** argv after the command for one prompt. */
  argv: (prompt: KitPrompt) => string[];
  /** Environment of the process (default: the kit's own). VIBEBOX_KIT_INPUT/OUTPUT are added. */
  env?: NodeJS.ProcessEnv;
  /** SIGTERM first; SIGKILL after this many ms if the group is still alive. */
  killGraceMs?: number;
  /** Cap on the stdout kept for the final message (events still carry all of it). */
  maxMessageBytes?: number;
}

/** Argument shapes of the headless modes of the agents the agents issue installs. */
export const AGENT_PRESETS: Record<string, Omit<CliRunnableOptions, 'env'>> = {
  claude: { command: 'claude', argv: (p) => ['-p', p.text] },
  codex: { command: 'codex', argv: (p) => ['exec', p.text] },
  gemini: { command: 'gemini', argv: (p) => ['-p', p.text] },
};

export function cliRunnable(opts: CliRunnableOptions): RunFn {
  return async function* run(prompt: KitPrompt, ctx: RunContext): AsyncGenerator<KitEvent, string> {
    const child = spawn(opts.command, opts.argv(prompt), {
      cwd: ctx.workDir,
      env: { ...(opts.env ?? process.env), VIBEBOX_KIT_INPUT: ctx.inputDir, VIBEBOX_KIT_OUTPUT: ctx.outputDir },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true, // its own process group, killed as one
    });
    const queue: KitEvent[] = [];
    let wake: (() => void) | undefined;
    const notify = (): void => {
      wake?.();
      wake = undefined;
    };
    let closed: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let spawnError: Error | undefined;
    const maxMsg = opts.maxMessageBytes ?? 1024 * 1024;
    let message = '';
    let stderrTail = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (text: string) => {
      if (message.length < maxMsg) message += text.slice(0, maxMsg - message.length);
      queue.push({ event_type: 'stdout', data: { text } });
      notify();
    });
    child.stderr.on('data', (text: string) => {
      stderrTail = (stderrTail + text).slice(-2000);
      queue.push({ event_type: 'stderr', data: { text } });
      notify();
    });
    child.on('error', (e) => {
      spawnError = e;
      closed ??= { code: null, signal: null };
      notify();
    });
    child.on('close', (code, signal) => {
      closed = { code, signal };
      notify();
    });

    let killTimer: NodeJS.Timeout | undefined;
    const killGroup = (): void => {
      if (closed || child.pid === undefined) return;
      const sig = (s: NodeJS.Signals): void => {
        try {
          process.kill(-child.pid!, s);
        } catch {
          // already gone
        }
      };
      sig('SIGTERM');
      killTimer ??= setTimeout(() => sig('SIGKILL'), opts.killGraceMs ?? 2000);
      killTimer.unref();
    };
    ctx.signal.addEventListener('abort', killGroup, { once: true });
    try {
      for (;;) {
        const ev = queue.shift();
        if (ev) {
          yield ev;
          continue;
        }
        if (closed) break;
        await new Promise<void>((r) => (wake = r));
      }
      if (spawnError) throw new KitError('E_RUN_FAILED', `cannot run ${opts.command}: ${spawnError.message}`);
      if (ctx.signal.aborted) return '';
      if (closed.code !== 0)
        throw new KitError('E_RUN_FAILED', `${opts.command} exited with ${closed.code ?? closed.signal}${stderrTail ? `: ${stderrTail.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
      return message.trimEnd();
    } finally {
      // Reached on normal end, on a throw, and when the server calls return() on an aborted turn.
      ctx.signal.removeEventListener('abort', killGroup);
      killGroup();
      if (killTimer && closed) clearTimeout(killTimer);
    }
  };
}
