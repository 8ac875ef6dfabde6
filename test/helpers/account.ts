// A host account by name, as getent reads it (the test runner and the doctor test run as one).
import { spawnSync } from 'node:child_process';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export function account(name: string): Account | null {
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const f = r.stdout.trim().split(':');
  return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
}
