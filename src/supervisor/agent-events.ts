// What the guest agent tells the supervisor over the agent channel: its hello (then the setup
// goes out), setup done (the session runs), an exec's start and end, a container op's progress
// and outcome, a :command's request, log lines, the answer to a suspend and to a forward. All of
// it is guest input: text is cleaned or capped by the schema, and a request may end only its
// own exec (guest-requests.ts).
import { VibeboxError } from '../errors.js';
import { PROTOCOL_VERSION, type AgentMessage } from '../../guest/protocol.js';
import type { ClientsHub } from './clients-hub.js';
import type { ForwardTable } from './forwards.js';
import type { EventWriter } from './events.js';
import { handleGuestRequest } from './guest-requests.js';
import { cleanLine, type GuestLog } from './guest-text.js';
import { epochMs, type Session } from './session.js';
import { EGRESS_URL } from '../../guest/protocol.js';

export function protocolMismatch(theirs: number, id: string): VibeboxError {
  return new VibeboxError(
    'E_PROTOCOL',
    `this session's image speaks guest agent protocol ${theirs}, this vibebox speaks ${PROTOCOL_VERSION}`,
    `start a fresh session on a current image: \`vibebox image build\`, then \`vibebox delete ${id}\` (its disk is lost) and run vibebox again; or install the vibebox that built it`,
  );
}

export const proxyEnv = (): Record<string, string> => {
  const p = EGRESS_URL;
  return { HTTP_PROXY: p, HTTPS_PROXY: p, http_proxy: p, https_proxy: p, NO_PROXY: 'localhost,127.0.0.1,::1', no_proxy: 'localhost,127.0.0.1,::1' };
};

export interface AgentEventDeps {
  session: Session;
  hub: Pick<ClientsHub, 'disown' | 'ownerOf' | 'clients'>;
  forwards: Pick<ForwardTable, 'addAll' | 'reopen'>;
  events: Pick<EventWriter, 'emit'>;
  stop(reason: string, resetAfter?: boolean, suspend?: boolean): Promise<void>;
  /** explain's answer for `:explain` (JSON or text). */
  explain(json: boolean): string;
  /** The guest may send log frames at any rate and size: capped there. */
  guestLog: Pick<GuestLog, 'frame'>;
}

export function handleAgentMessage(m: AgentMessage, d: AgentEventDeps): void {
  const s = d.session;
  const { hub, forwards, events } = d;
  const log = s.log;
  switch (m.type) {
    case 'hello': {
      s.bootMs = Date.now() - s.t0;
      log(cleanLine(`agent hello after ${s.bootMs} ms (guest uptime ${m.uptimeMs} ms, agent process started at ${m.agentStartMs} ms, kernel ${m.kernel}, node ${m.node})`));
      // After a resume the guest clock is behind by the suspension: the host's time, one round trip after the hello.
      if (s.resumedVm) s.agent!.send({ type: 'clock', epochMs: Date.now() });
      s.agent!.send({ type: 'setup', mounts: s.mounts, env: proxyEnv(), ...s.hostCas, local: s.cfg.workspace?.local ?? [] });
      return;
    }
    case 'setup_done':
      if (m.ok) {
        s.state = 'running';
        log(`guest ready after ${Date.now() - s.t0} ms`);
        events.emit('running');
        s.readyResolve();
        // First boot: the approved [[ports]]; after a resume: the same rules on the new QEMU.
        if (!s.forwardsStarted) {
          s.forwardsStarted = true;
          void forwards.addAll((s.cfg.ports ?? []).map((p) => ({ host: p.host, guest: p.guest, origin: 'config' as const })));
        } else void forwards.reopen();
      } else {
        s.readyReject(new Error(`guest setup failed: ${cleanLine(m.error ?? 'unknown error', 500)}`));
        void d.stop('setup failed');
      }
      return;
    case 'started': {
      const x = s.execTimes.get(m.id);
      if (x) x.started = epochMs();
      return;
    }
    case 'exit':
    case 'exec_error': {
      const x = s.execTimes.get(m.id);
      if (x) {
        s.execTimes.delete(m.id);
        log(`timing exec ${m.id} ${JSON.stringify({ ...x, exit: epochMs() })}`);
      }
      const c = hub.disown(m.id);
      if (!c) return;
      if (m.type === 'exit') c.send({ type: 'exit', code: m.code, signal: m.signal === null ? null : cleanLine(m.signal, 16) });
      else {
        const code = m.reason === 'not_found' ? 'E_EXEC_NOT_FOUND' : m.reason === 'not_executable' ? 'E_EXEC_NOT_EXECUTABLE' : 'E_EXEC';
        c.send({ type: 'error', code, message: cleanLine(m.message, 500) });
      }
      c.close();
      return;
    }
    // A container op's progress and outcome go to the client that asked, as validated (the
    // client prints their text through shown()); the outcome ends the op and the connection.
    case 'op_event':
      hub.ownerOf(m.id)?.send({ type: 'op_event', event: m.event });
      return;
    case 'op_result':
    case 'op_error': {
      const c = hub.disown(m.id);
      if (!c) return;
      if (m.type === 'op_result') c.send({ type: 'op_result', result: m.result });
      else c.send({ type: 'error', code: m.error.code, message: m.error.message, ...(m.error.hint !== undefined ? { hint: m.error.hint } : {}), exitCode: m.error.exitCode });
      c.close();
      return;
    }
    case 'request': {
      const r = handleGuestRequest(m, {
        explain: d.explain,
        ownerOf: (execId) => hub.ownerOf(execId),
        clients: () => hub.clients,
        hangUp: (execId) => s.agent?.send({ type: 'signal', id: execId, signal: 'SIGHUP' }),
        replaceSession: () => void d.stop('new session requested', true),
      });
      s.agent?.send({ type: 'reply', reqId: m.reqId, ok: r.exitCode === 0, output: r.output, exitCode: r.exitCode });
      return;
    }
    case 'log':
      d.guestLog.frame(m.level, m.message);
      return;
    case 'suspend_done':
      s.suspendAnswer?.(m);
      return;
    case 'forward_ready':
      s.relayWaits.get(m.fwdId)?.({ ...(m.port !== undefined ? { port: m.port } : {}), ...(m.error !== undefined ? { error: m.error } : {}) });
      return;
  }
}
