// `[workspace] local`: directories under /workspace that live on the VM disk instead of the host
// (dependency trees: node_modules, .venv, target). Pure rules, shared by the config check on the
// host and the agent in the guest.

/** Where the guest keeps them: on the session's own disk, so they survive a VM restart. */
export const LOCAL_ROOT = '/var/lib/vibebox/local';

/** Why `name` cannot be a local directory, or null when it can (pure). */
export function localDirProblem(name: string): string | null {
  if (name === '' || name.startsWith('/')) return 'must be a relative path under the project, like "node_modules"';
  if (name.includes('\0') || name.includes('\\')) return 'must not contain NUL or backslash';
  for (const part of name.replace(/\/+$/, '').split('/')) {
    if (part === '' || part === '.' || part === '..') return 'must not contain empty, "." or ".." components';
    // .git holds the walls (config, hooks); .vibebox is hidden from the guest.
    if (part === '.git' || part === '.vibebox') return `must not name or contain ${part}`;
  }
  return null;
}

/** The normalised names, shortest first, so a parent is mounted before a child (pure). */
export function localDirOrder(names: readonly string[]): string[] {
  const norm = [...new Set(names.map((n) => n.replace(/\/+$/, '')))];
  return norm.sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
}
