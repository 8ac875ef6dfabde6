// dockerd starts when something first needs it (the `docker` wrapper asks the agent), never on
// the shell's critical path: under emulation it costs many seconds of CPU.
import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { socketAnswers } from '../socket-answers.js';
import { pollUntil, PollTimeout } from '../poll.js';

let starting: Promise<void> | null = null;
const SOCK = '/run/docker.sock';

const answers = () => socketAnswers(SOCK);

export function dockerdOnDemand(env: Record<string, string>): Promise<void> {
  if (starting) return starting;
  starting = (async () => {
    if (await answers()) return;
    if (!existsSync('/usr/sbin/dockerd')) throw new Error('docker is not installed in this image');
    const logFd = openSync('/var/log/dockerd.log', 'a');
    const child = spawn('/usr/sbin/dockerd', ['--group', 'vibe'], { env: { ...process.env, ...env }, stdio: ['ignore', logFd, logFd], detached: true });
    child.unref();
    // dockerd has no readiness signal we can wait on without systemd: watch its socket.
    await pollUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`dockerd exited with ${child.exitCode}; see /var/log/dockerd.log`);
        return answers();
      },
      { deadline: Date.now() + 120_000, intervalMs: 50, maxIntervalMs: 500, what: 'dockerd listening' },
    ).catch((e: Error) => {
      throw e instanceof PollTimeout ? new Error('dockerd did not start within 120 s; see /var/log/dockerd.log') : e;
    });
  })();
  starting.catch(() => {
    starting = null;
  });
  return starting;
}
