// The external tools of a save and a resume (zstd, the RAM packer), run to their end. A tool that
// writes a file is given a descriptor of a file vibebox made 0600 (qemu/private-file.ts) rather
// than a name: zstd -o would create it with the user's umask (0644), and a chmod after the
// save is too late for whoever opened it meanwhile.
import { spawn } from 'node:child_process';
import { closeSync } from 'node:fs';
import type { Socket } from 'node:net';
import { basename } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { createPrivateFile } from './private-file.js';

/** A failure of the VM machinery (QEMU, a helper, a tool); qemu-driver.ts re-exports it. */
export class DriverError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DriverError';
  }
}

type Input = Socket | Readable | number | 'ignore';

/** Run a tool to its end; stdin from a socket or a descriptor; stdout into `out` (0600) when given. Rejects with its stderr. */
export async function runToolTo(cmd: string, args: string[], stdin: Input = 'ignore', out?: string): Promise<void> {
  const outFd = out === undefined ? null : createPrivateFile(out);
  try {
    await new Promise<void>((res, rej) => {
      const c = spawn(cmd, args, { stdio: [stdin, outFd ?? 'ignore', 'pipe'] });
      let err = '';
      c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      c.on('error', (e) => rej(new DriverError(`cannot run ${cmd}: ${e.message}`)));
      c.on('exit', (code, sig) => (code === 0 ? res() : rej(new DriverError(`${cmd} exited with ${sig ?? code}: ${err.trim().slice(0, 200)}`))));
    });
  } finally {
    if (outFd !== null) closeSync(outFd);
  }
}

/** `a | b` to their end; `b`'s stdout into `out` (0600) when given. Rejects with the stderr of the one that failed. */
export async function pipelineTo(a: string[], b: string[], stdin: number | 'ignore' = 'ignore', out?: string): Promise<void> {
  const outFd = out === undefined ? null : createPrivateFile(out);
  try {
    const run = (argv: string[], io: [Readable | number | 'ignore' | 'pipe', Writable | number | 'ignore' | 'pipe']) => {
      const c = spawn(argv[0]!, argv.slice(1), { stdio: [io[0], io[1], 'pipe'] });
      let err = '';
      c.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      const done = new Promise<void>((res, rej) => {
        c.on('error', (e) => rej(new DriverError(`cannot run ${argv[0]}: ${e.message}`)));
        c.on('exit', (code, sig) => (code === 0 ? res() : rej(new DriverError(`${basename(argv[0]!)} exited with ${sig ?? code}: ${err.trim().slice(0, 200)}`))));
      });
      return { c, done };
    };
    const second = run(b, ['pipe', outFd ?? 'ignore']);
    const first = run(a, [stdin, second.c.stdin!]);
    // Our copy of the pipe's write end must go, or the second never sees the end of its input.
    second.c.stdin!.destroy();
    const r = await Promise.allSettled([first.done, second.done]);
    for (const x of r) if (x.status === 'rejected') throw x.reason;
  } finally {
    if (outFd !== null) closeSync(outFd);
  }
}
