// Which exec a :command came from, decided by the agent from the kernel's view, not from the
// VIBEBOX_EXEC_ID the request names (any guest process can name any id): the process at the other
// end of the unix socket (ss reads it from sock_diag), then its ancestors up to an exec's root.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';

interface SsLine {
  inode: number;
  peer: number;
  users: { pid: number; fd: number }[];
}

/** Parse `ss -xpnH` lines: netid state recvq sendq local lport peer pport users:((…)). */
export function parseSs(text: string): SsLine[] {
  const out: SsLine[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const inode = Number(f[5]);
    const peer = Number(f[7]);
    if (!Number.isInteger(inode) || !Number.isInteger(peer)) continue;
    const users = [...line.matchAll(/pid=(\d+),fd=(\d+)/g)].map((m) => ({ pid: Number(m[1]), fd: Number(m[2]) }));
    out.push({ inode, peer, users });
  }
  return out;
}

/** The pid at the other end of our connected unix socket `fd`, or null. */
export function peerPid(fd: number, timeoutMs = 5000): Promise<number | null> {
  return new Promise((resolve) => {
    execFile('ss', ['-xpnH'], { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (err, stdout) => {
      if (err) return resolve(null);
      const lines = parseSs(stdout);
      const ours = lines.find((l) => l.users.some((u) => u.pid === process.pid && u.fd === fd));
      if (!ours) return resolve(null);
      const theirs = lines.find((l) => l.inode === ours.peer);
      resolve(theirs?.users[0]?.pid ?? null);
    });
  });
}

function parentOf(pid: number): number | null {
  try {
    // The command name (field 2) may hold spaces and parentheses: read after its last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(rest[1]);
    return Number.isInteger(ppid) ? ppid : null;
  } catch {
    return null;
  }
}

/** The exec whose root process is `pid` or one of its ancestors. */
export function execOf(pid: number | null, roots: ReadonlyMap<number, number>): number | null {
  const byPid = new Map<number, number>();
  for (const [execId, root] of roots) byPid.set(root, execId);
  for (let p = pid, hops = 0; p !== null && p > 1 && hops < 64; p = parentOf(p), hops++) {
    const e = byPid.get(p);
    if (e !== undefined) return e;
  }
  return null;
}
