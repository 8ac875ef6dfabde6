// Requests from the guest's :commands (`:explain`, `:exit`, `:new`, `:help`). Everything here is
// guest input: it may end only the exec that asked (its own client), never another client or the
// supervisor itself.
import type { AgentMessage } from '../../guest/protocol.js';
import type { Client } from './clients-hub.js';

export type GuestRequest = Extract<AgentMessage, { type: 'request' }>;

export interface GuestRequestContext {
  explain(json: boolean): string;
  /** The client that owns this exec, if any. */
  ownerOf(execId: number | null): Client | undefined;
  clients(): Iterable<Client>;
  /** Hang up an exec (its client is leaving). */
  hangUp(execId: number): void;
  /** Replace the session: stop it and delete it (the supervisor's stop with reset). */
  replaceSession(): void;
}

export interface GuestReply {
  exitCode: number;
  output: string;
}

/** The request came from the exec `owner` is running now (the agent says which exec it really came from). */
function ownsExec(owner: Client | undefined, execId: number | null): owner is Client {
  return owner !== undefined && execId !== null && owner.execId === execId;
}

export function handleGuestRequest(m: GuestRequest, ctx: GuestRequestContext): GuestReply {
  const owner = ctx.ownerOf(m.execId);
  switch (m.command) {
    case 'explain':
      return { exitCode: 0, output: ctx.explain(m.args.includes('--json')) };
    case 'help':
      return { exitCode: 0, output: '' };
    case 'exit': {
      if (!ownsExec(owner, m.execId) || m.execId === null) return { exitCode: 1, output: ':exit works in a vibebox shell, not in a background process\n' };
      owner.send({ type: 'detach' });
      ctx.hangUp(m.execId);
      owner.close();
      return { exitCode: 0, output: '' };
    }
    case 'new':
      // Deleting the session ends every client's work: only a process inside an exec that a
      // client is running now may ask, never a daemon or a process left from an ended exec.
      if (!ownsExec(owner, m.execId)) return { exitCode: 1, output: ':new works in a vibebox shell, not in a background process\n' };
      for (const c of ctx.clients()) c.send({ type: 'reset', reattach: c === owner });
      ctx.replaceSession();
      return { exitCode: 0, output: 'replacing this session with a fresh one…\n' };
  }
}
