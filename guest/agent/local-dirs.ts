// The guest side of `[workspace] local`: each name gets a directory on the VM disk bind-mounted
// over /workspace/<name>, shadowing the host's directory (which the host keeps as it was).
import { execFileSync } from 'node:child_process';
import { chownSync, lstatSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LOCAL_ROOT, localDirOrder, localDirProblem } from '../local-dirs.js';

export function mountLocalDirs(workspace: string, names: readonly string[], vibe: { uid: number; gid: number }): void {
  for (const name of localDirOrder(names)) {
    const problem = localDirProblem(name);
    if (problem) throw new Error(`[workspace] local "${name}": ${problem}`);
    const store = join(LOCAL_ROOT, name);
    mkdirSync(store, { recursive: true });
    chownSync(store, vibe.uid, vibe.gid);
    const at = join(workspace, name);
    // The mount point on the share: created as vibe (guest root has no id on the host), and never
    // through a symlink, which would put the bind somewhere else in the guest.
    execFileSync('mkdir', ['-p', '--', at], { uid: vibe.uid, gid: vibe.gid, stdio: 'pipe', timeout: 30_000 });
    let p = workspace;
    for (const part of name.split('/')) {
      p = join(p, part);
      if (lstatSync(p).isSymbolicLink()) throw new Error(`[workspace] local "${name}": ${p} is a symlink (remove it on the host)`);
    }
    execFileSync('mount', ['--bind', store, at], { stdio: 'pipe', timeout: 30_000 });
  }
}
