// What a client asks of the supervisor (src/supervisor/client-protocol.ts): status, stop, reload, port
// forwards, and an exec with its resize, signals and end of input. Clients are the host user's
// own processes; what they send still goes to the guest only through the agent channel.
import { VibeboxError } from '../errors.js';
import type { ResolvedConfig } from '../config/load.js';
import type { Client, ClientsHub } from './clients-hub.js';
import type { ForwardTable } from './forwards.js';
import type { ClientMessage, Status } from './client-protocol.js';
import { containerSpec } from './container-spec.js';
import { cleanLine } from './guest-text.js';
import { sendError } from './error-reply.js';
import { epochMs, type AgentLink, type Session } from './session.js';
import { policyWarnings, type KeyInjection } from '../keys/inject.js';

export interface ClientRequestDeps {
  session: Session;
  hub: Pick<ClientsHub, 'addRef' | 'own' | 'flushEarly'>;
  forwards: Pick<ForwardTable, 'add' | 'remove'>;
  status(): Status;
  stop(reason: string, resetAfter?: boolean, suspend?: boolean): Promise<void>;
  /** The approved config now (logs what is not applied). */
  applyConfig(): ResolvedConfig;
  touchIndex(force?: boolean): Promise<unknown>;
  /** Placeholders for the keys the host proxy injects (src/keys/inject.ts); absent: env as sent. */
  keys?: Pick<KeyInjection, 'guestEnv' | 'routes'>;
}

export async function handleClientMessage(c: Client, m: ClientMessage, d: ClientRequestDeps): Promise<void> {
  const s = d.session;
  const { hub, forwards } = d;
  const log = s.log;
  switch (m.type) {
    case 'status':
      c.send({ type: 'status', status: d.status() });
      return;
    case 'stop':
      c.send({ type: 'ok' });
      void d.stop(m.suspend ? 'suspend requested' : 'requested', false, m.suspend === true);
      return;
    case 'reload':
      try {
        s.cfg = d.applyConfig();
        s.proxy?.setPolicy(s.cfg.network);
        log(`policy reloaded: ${s.cfg.network.mode} ${s.cfg.network.entries.length} entries`);
        // the runs from now on say it too (see the exec below)
        if (d.keys) for (const w of policyWarnings(d.keys.routes(s.cfg.network))) log(w);
        c.send({ type: 'ok' });
      } catch (e) {
        sendError(c, e, 'E_INTERNAL');
      }
      return;
    case 'port': {
      // Typed on the host by the user: that is the approval. Session-only (not written anywhere).
      try {
        await s.ready;
        if (m.close) {
          if (!(await forwards.remove(m.host))) throw new VibeboxError('E_USAGE', `host port ${m.host} is not forwarded`, 'see `vibebox port` for the forwards');
        } else await forwards.add({ host: m.host, guest: m.guest ?? m.host, origin: m.origin ?? 'session', ...(m.container ? { container: m.container } : {}) });
        c.send({ type: 'ok' });
      } catch (e) {
        sendError(c, e, 'E_PORT');
      }
      return;
    }
    case 'resize':
      if (c.execId !== null) s.agent?.send({ type: 'resize', id: c.execId, cols: m.cols, rows: m.rows });
      return;
    case 'signal':
      if (c.execId !== null) s.agent?.send({ type: 'signal', id: c.execId, signal: m.signal });
      return;
    case 'stdin_end':
      if (c.execId !== null) s.agent?.send({ type: 'stdin_end', id: c.execId });
      else c.earlyEnd = true;
      return;
    case 'op': {
      if (c.isRef) return;
      const agent = await admit(c, m.project, d);
      if (!agent) return;
      const id = s.nextExec++;
      hub.own(id, c);
      // The approved spec of the moment, as for a container exec; the env only where the op reads one.
      const env = m.request.op === 'kit_serve' && m.env ? (d.keys ? d.keys.guestEnv(m.env, Object.keys(m.env)) : m.env) : {};
      agent.send({ type: 'op', id, request: m.request, spec: containerSpec(s.cfg), env });
      log(`op ${id} ${m.request.op}`);
      return;
    }
    case 'exec': {
      if (c.isRef) return;
      const recv = epochMs();
      const agent = await admit(c, m.project, d);
      if (!agent) return;
      const execId = s.nextExec++;
      hub.own(execId, c);
      if (s.timing) s.execTimes.set(execId, { recv, sent: 0, started: 0 });
      // Placeholders for the keys the host proxy injects, and what the keys bring along (a git
      // credential helper): names the client did not send, so they join the container's pass list.
      const sent = m.env ?? {};
      const env = d.keys ? d.keys.guestEnv(sent, m.container?.pass) : sent;
      const added = Object.keys(env).filter((k) => !(k in sent) && !(m.container?.pass ?? []).includes(k));
      // A container exec carries the approved [image]/[container] of the moment (reloads included).
      const container = m.container
        ? { ...m.container, ...(added.length ? { pass: [...(m.container.pass ?? []), ...added] } : {}), spec: containerSpec(s.cfg) }
        : undefined;
      // A key this run passes whose rule host the policy (as it is now) refuses: the user is told
      // here, where the agent would otherwise just fail to authenticate there.
      if (d.keys) {
        const passed = new Set([...Object.keys(m.env ?? {}), ...(m.container?.pass ?? [])]);
        for (const w of policyWarnings(d.keys.routes(s.cfg.network).filter((r) => passed.has(r.name)))) c.send({ type: 'progress', line: `vibebox: ${w}` });
      }
      agent.send({
        type: 'exec',
        id: execId,
        argv: m.argv ?? (container ? [] : ['/bin/bash', '-l']),
        ...(container ? { container } : {}),
        env,
        cwd: m.cwd ?? '/workspace',
        user: m.user ?? 'vibe',
        ...(m.tty ? { pty: { cols: m.cols ?? 80, rows: m.rows ?? 24, term: m.term ?? 'xterm-256color' } } : {}),
      });
      // Input the client sent while we awaited the boot goes after the exec, in order.
      if (hub.flushEarly(c)) agent.send({ type: 'stdin_end', id: execId });
      const x = s.execTimes.get(execId);
      if (x) x.sent = epochMs();
      if (!m.argv) log(`shell ${execId} opened`);
      return;
    }
  }
}

/**
 * An exec or an op may go to the guest: the client is of this project, the session is not
 * stopping; the client becomes a reference, and the boot is awaited. Null: refused (said and
 * closed) or the client left meanwhile.
 */
async function admit(c: Client, project: string | undefined, d: ClientRequestDeps): Promise<AgentLink | null> {
  const s = d.session;
  if (project !== undefined && project !== s.projectReal) {
    // A client in another folder that carries this session's id (a copy of the project).
    c.send({ type: 'error', code: 'E_SESSION_OTHER', message: `this session belongs to ${s.project}, not ${cleanLine(project)}`, hint: 'run vibebox in that folder' });
    c.close();
    return null;
  }
  if (s.stopping) {
    c.send({ type: 'error', code: 'E_STOPPING', message: 'the session is shutting down', hint: 'run the command again in a moment' });
    c.close();
    return null;
  }
  d.hub.addRef(c);
  void d.touchIndex();
  if (s.state === 'starting') {
    // The line says boot or resume (and why not a resume), once the supervisor knows.
    void s.startLine.then((line) => c.open && c.send({ type: 'progress', line }));
    s.announced.add(c);
  }
  try {
    await s.ready;
  } catch (e) {
    sendError(c, e, 'E_VM_START', `see ${s.paths.serialLog} and ${s.paths.supervisorLog}`);
    c.close();
    return null;
  }
  const agent = s.agent;
  return c.open && agent ? agent : null;
}
