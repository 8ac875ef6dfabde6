// The agents `vibebox run <agent>` knows: how each installs into the state volume and which
// binary it runs. Pure data; the installing is in ops.ts.
import { shown } from '../shown.js';

export const STATE_HOME = '/home/vibe';
/** npm installs agent CLIs here (in the state volume): they survive container recreation. */
export const AGENT_PREFIX = `${STATE_HOME}/.local`;

export type Installer =
  | { kind: 'npm'; pkg: string }
  /** pip from PyPI: only through the proxy when the project allows these hosts. */
  | { kind: 'pip'; pkg: string; hosts: readonly string[] };

export interface AgentDef {
  name: string;
  bin: string;
  install: Installer;
}

const npm = (name: string, pkg: string, bin = name): AgentDef => ({ name, bin, install: { kind: 'npm', pkg } });

export const AGENTS: readonly AgentDef[] = [
  npm('claude', '@anthropic-ai/claude-code'),
  npm('codex', '@openai/codex'),
  npm('gemini', '@google/gemini-cli'),
  npm('opencode', 'opencode-ai'),
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

/** The shell command (run as vibe in the container) that installs or updates the agent. */
export function installCommand(a: AgentDef): string[] {
  if (a.install.kind === 'npm') return ['npm', 'install', '-g', '--prefix', AGENT_PREFIX, '--no-fund', '--no-audit', `${a.install.pkg}@latest`];
  // --user puts it under ~/.local (bin in ~/.local/bin); Debian's pip refuses without the override.
  return ['python3', '-m', 'pip', 'install', '--user', '--upgrade', '--break-system-packages', a.install.pkg];
}

/**
 * The shell snippet printing the installed version, or nothing: npm's package.json under the
 * prefix, pip's metadata for pip agents.
 */
export function versionCommand(a: AgentDef): string {
  if (a.install.kind === 'npm') {
    const pj = `${AGENT_PREFIX}/lib/node_modules/${a.install.pkg}/package.json`;
    return `[ -f '${pj}' ] && node -p 'require(process.argv[1]).version' '${pj}' 2>/dev/null || true`;
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
