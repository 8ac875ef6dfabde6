// Asking the user: a y/N question on a terminal; never on a pipe.
import { createInterface } from 'node:readline/promises';
import { shown } from '../../guest/shown.js';

export function isInteractive(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    // A question may name a directory or a path: nothing in it may rewrite the line it asks on.
    const a = await rl.question(`${shown(question)} [y/N] `);
    return /^y(es)?$/i.test(a.trim());
  } finally {
    rl.close();
  }
}
