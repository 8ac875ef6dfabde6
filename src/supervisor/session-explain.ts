// `:explain` in the VM, answered by the supervisor as the host's `vibebox explain` answers: what
// vibebox.toml asks for beyond the approval is listed, marked pending. Measured against what this
// VM runs with (the session's config), not a recomputed approval; a vibebox.toml that does not
// load shows the applied config alone.
import { explain, explainText } from '../explain.js';
import { effectiveConfig } from '../approval/effective.js';
import { loadConfig, type ResolvedConfig } from '../config/load.js';
import type { ForwardTable } from './forwards.js';
import type { Session } from './session.js';

export function sessionExplain(s: Session, forwards: ForwardTable, json: boolean): string {
  let pending: { file: ResolvedConfig; unapproved: string[] } | undefined;
  try {
    pending = { file: loadConfig(s.project), unapproved: effectiveConfig(s.project, s.id).unapproved };
  } catch {
    pending = undefined;
  }
  const e = explain(s.project, s.id, s.cfg, forwards.list(), pending);
  return json ? JSON.stringify(e, null, 2) + '\n' : explainText(e);
}
