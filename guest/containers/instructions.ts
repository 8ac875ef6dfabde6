// The block vibebox keeps in each agent's instruction file (in the state volume): what the agent
// must know about its sandbox. Only the text between the markers is ours; the rest is the user's.
// Pure: the files are read and written inside the container, as the agent user (container.ts), so
// a symlink planted in the state volume cannot point the VM's root at a file of the VM.

export const BEGIN = '<!-- vibebox:begin -->';
export const END = '<!-- vibebox:end -->';

/** Instruction files, relative to the agent user's home (the state volume). */
export const INSTRUCTION_FILES: readonly string[] = ['.claude/CLAUDE.md', '.codex/AGENTS.md', '.gemini/GEMINI.md'];

export const INSTRUCTIONS = `## You are running inside vibebox

- You run in a sandbox: a hardened container (no capabilities, no Docker socket) inside a
  virtual machine. Your home directory persists across runs; everything else outside
  /workspace may be discarded by the user.
- /workspace is the project. It is shared with the user's machine: edits there are seen by the
  user at once, and the user's edits are seen by you.
- The network goes through an egress proxy with an allowlist. A response with status 451 and the
  header \`X-Vibebox-Egress\` means the host is not allowed: do not work around it, ask the user to
  run the \`vibebox allow <host>\` it names. With \`add-via=none\` nothing can allow it (the
  user's own machine, its loopback and link-local addresses are never reachable): say so.
- You cannot install system packages yourself. Ask the user to run
  \`vibebox run --root -- apt-get install <package>\`, or to add it to \`[image] apt\` in
  vibebox.toml (then \`vibebox rebuild\`).
- Services (databases, caches…) will be requestable through the vibebox stack; not yet available.
`;

/** The file's text with our block put in (replaced between the markers, or appended). */
export function withBlock(existing: string | null, body: string = INSTRUCTIONS): string {
  const block = `${BEGIN}\n${body.endsWith('\n') ? body : body + '\n'}${END}\n`;
  if (existing === null || existing === '') return block;
  const b = existing.indexOf(BEGIN);
  const e = b < 0 ? -1 : existing.indexOf(END, b);
  if (b >= 0 && e >= 0) {
    let after = existing.slice(e + END.length);
    if (after.startsWith('\n')) after = after.slice(1);
    return existing.slice(0, b) + block + after;
  }
  // No (complete) block yet: ours goes after the user's text, separated by a blank line.
  const sep = existing.endsWith('\n\n') ? '' : existing.endsWith('\n') ? '\n' : '\n\n';
  return existing + sep + block;
}

/**
 * Which instruction files need writing, given their current text (null: absent), keyed by their
 * path relative to the home. Unchanged files are left out: they are never rewritten.
 */
export function instructionWrites(current: ReadonlyMap<string, string | null>, body: string = INSTRUCTIONS): Map<string, string> {
  const out = new Map<string, string>();
  for (const rel of INSTRUCTION_FILES) {
    const old = current.get(rel) ?? null;
    const next = withBlock(old, body);
    if (next !== old) out.set(rel, next);
  }
  return out;
}
