// The agents `vibebox run <agent>` knows: how each installs and which binary it runs. Pure data;
// the host's shared copy is src/agents/, the in-container install ops.ts (docs/architecture.md,
// Agents: the shared store).
import { shown } from '../shown.js';

export const STATE_HOME = '/home/vibe';
/** npm installs agent CLIs here (in the state volume): they survive container recreation. */
export const AGENT_PREFIX = `${STATE_HOME}/.local`;

/** Where the VM mounts the host's agent store (read-only; the host alone writes it). */
export const AGENT_STORE = '/opt/vibebox-agents';

export type Installer =
  | {
      kind: 'npm';
      pkg: string;
      /**
       * How the agent runs from the host's copy, fetched without package scripts: a path under
       * its node_modules (`{arch}`: the VM's CPU as node names it). Absent: `.bin/<bin>`. null:
       * the package needs its install script, so it installs in the container instead.
       */
      entry?: string | null;
    }
  /** pip from PyPI: only through the proxy when the project allows these hosts. */
  | { kind: 'pip'; pkg: string; hosts: readonly string[] };

export interface AgentDef {
  name: string;
  bin: string;
  install: Installer;
  /** Set for every run of the agent (not secret). */
  env?: Readonly<Record<string, string>>;
}

const npm = (name: string, pkg: string, bin = name): AgentDef => ({ name, bin, install: { kind: 'npm', pkg } });

export const AGENTS: readonly AgentDef[] = [
  {
    name: 'claude',
    bin: 'claude',
    // Its postinstall only copies the platform package's native binary over a stub: run that
    // binary where it is. It cannot update a read-only copy itself (vibebox update does).
    install: { kind: 'npm', pkg: '@anthropic-ai/claude-code', entry: '@anthropic-ai/claude-code-linux-{arch}/claude' },
    env: { DISABLE_AUTOUPDATER: '1' },
  },
  npm('codex', '@openai/codex'),
  npm('gemini', '@google/gemini-cli'),
  // Its postinstall picks a binary by CPU features (AVX2, musl): it installs in the container.
  { name: 'opencode', bin: 'opencode', install: { kind: 'npm', pkg: 'opencode-ai', entry: null } },
  npm('pi', '@mariozechner/pi-coding-agent'),
  npm('qwen', '@qwen-code/qwen-code'),
  npm('copilot', '@github/copilot'),
  { name: 'aider', bin: 'aider', install: { kind: 'pip', pkg: 'aider-chat', hosts: ['pypi.org', 'files.pythonhosted.org'] } },
];

export function findAgent(name: string): AgentDef | undefined {
  return AGENTS.find((a) => a.name === name);
}

export function unknownAgentLine(name: string): string {
  return `vibebox: unknown agent ${name} (known: ${AGENTS.map((a) => a.name).join(', ')})`;
}

export function packageOf(a: AgentDef): string {
  return a.install.pkg;
}

/** A tree of the host's store, as the host names it to the guest: `<agent>/<version>-<16 hex>`. */
export const STORE_TREE = /^[a-z][a-z0-9-]{0,31}\/[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}-[0-9a-f]{16}$/;

/** Whether the agent can run from the host's store (an npm package that needs no install script). */
export function runsFromStore(a: AgentDef): boolean {
  return a.install.kind === 'npm' && a.install.entry !== null;
}

/** The path (in the VM and the container alike) of the agent's program in a store tree. */
export function storeEntry(a: AgentDef, tree: string, arch: string): string {
  if (a.install.kind !== 'npm' || a.install.entry === null) throw new Error(`${a.name} does not run from the store`);
  if (!STORE_TREE.test(tree) || !tree.startsWith(`${a.name}/`)) throw new Error(`not a store tree of ${a.name}: ${JSON.stringify(tree)}`);
  const rel = a.install.entry === undefined ? `.bin/${a.bin}` : a.install.entry.replaceAll('{arch}', arch);
  return `${AGENT_STORE}/${tree}/node_modules/${rel}`;
}

/** The shell command (run as vibe in the container) that installs or updates the agent. */
export function installCommand(a: AgentDef): string[] {
  if (a.install.kind === 'npm') return ['npm', 'install', '-g', '--prefix', AGENT_PREFIX, '--no-fund', '--no-audit', `${a.install.pkg}@latest`];
  // --user puts it under ~/.local (bin in ~/.local/bin); Debian's pip refuses without the override.
  return ['python3', '-m', 'pip', 'install', '--user', '--upgrade', '--break-system-packages', a.install.pkg];
}

/**
 * The shell snippet printing the installed version, or nothing: the host store's current one,
 * else npm's package.json under the prefix, pip's metadata for pip agents.
 */
export function versionCommand(a: AgentDef): string {
  if (a.install.kind === 'npm') {
    const pj = `${AGENT_PREFIX}/lib/node_modules/${a.install.pkg}/package.json`;
    const own = `[ -f '${pj}' ] && node -p 'require(process.argv[1]).version' '${pj}' 2>/dev/null || true`;
    if (!runsFromStore(a)) return own;
    // The host's store names its current version (the host writes it; read-only here).
    return `v=$(sed -n 's/^version=//p' '${AGENT_STORE}/${a.name}/current' 2>/dev/null); if [ -n "$v" ]; then echo "$v"; else ${own}; fi`;
  }
  return `python3 -m pip show ${a.install.pkg} 2>/dev/null | sed -n 's/^Version: //p'`;
}

export interface AgentRow {
  name: string;
  package: string;
  version: string | null;
}

export function agentsTable(rows: readonly AgentRow[]): string {
  // The version is whatever the container printed.
  const cells = [['AGENT', 'PACKAGE', 'INSTALLED'], ...rows.map((r) => [r.name, r.package, r.version ?? 'not installed'].map(shown))];
  const w0 = Math.max(...cells.map((c) => c[0]!.length));
  const w1 = Math.max(...cells.map((c) => c[1]!.length));
  return cells.map((c) => `${c[0]!.padEnd(w0)}  ${c[1]!.padEnd(w1)}  ${c[2]}`).join('\n') + '\n';
}
