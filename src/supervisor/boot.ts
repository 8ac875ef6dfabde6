// Start-up of a session's VM, after the clients' socket listens: the egress proxy, the accelerator,
// the disk check, the shares, the agent channel's socket, the console log, then resume from a
// saved state or boot. A failure anywhere is reported to waiting clients and stops the session.
import { createServer as createNetServer, type Socket } from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { shortId } from '../paths.js';
import { prepareSessionDisk } from '../session/disk.js';
import { checkDisk } from '../../qemu/disk.js';
import type { VmDriver, VmRequest } from '../../qemu/driver.js';
import { AGENT_PORT_NAME, type AgentMessage } from '../../guest/protocol.js';
import { AGENT_STORE } from '../../guest/containers/agents.js';
import { sharedTreesDir } from '../agents/store.js';
import { kernelCmdline } from '../../images/build.js';
import { EgressProxy } from '../../proxy/server.js';
import { testUpstreams } from './env.js';
import { AgentChannel } from './agent-channel.js';
import { protocolMismatch } from './agent-events.js';
import type { ClientsHub } from './clients-hub.js';
import { asVibeboxError, errorBody } from './error-reply.js';
import type { EventWriter } from './events.js';
import { cleanLine, CleanLines } from './guest-text.js';
import { hostCaBundle, setupCas } from './host-cas.js';
import type { KeyInjection } from '../keys/inject.js';
import { RotatingLog } from './rotating-log.js';
import type { Session } from './session.js';
import { keyNow, savedStatePlan, tryResume } from './suspend-resume.js';

export interface BootDeps {
  session: Session;
  driver: VmDriver;
  hub: Pick<ClientsHub, 'data'>;
  events: Pick<EventWriter, 'emit'>;
  /** The host's record of the saved state. */
  savedRecord: string;
  stop(reason: string): Promise<void>;
  onAgent(m: AgentMessage): void;
  bootTimeoutMs: number;
  /** The VM died during boot: the supervisor ends with this status once stopped. */
  exit(code: number): void;
  /** Keys the host proxy injects (src/keys/inject.ts); absent: none. */
  keys?: Pick<KeyInjection, 'proxyConfig' | 'withCa'>;
}

/** Resume or boot the VM; false when start-up failed (the session is then stopped). */
export async function boot(d: BootDeps): Promise<boolean> {
  const s = d.session;
  const { driver, events } = d;
  const { log, paths: pp, run: rp, image, project, id } = s;
  const sr = { session: s, driver, savedRecord: d.savedRecord };
  try {
    // ---- egress proxy: the VM's only way out
    // a test run of vibebox itself may play the providers on loopback (refused otherwise: env.ts)
    const test = testUpstreams();
    const upstreamCa = [hostCaBundle(), test?.ca].filter(Boolean).join('\n') || undefined;
    s.proxy = new EgressProxy({
      policy: s.cfg.network,
      logFile: pp.egressLog,
      ...(d.keys ? { intercept: d.keys.proxyConfig(upstreamCa) } : {}),
      ...(test ? { testUpstreams: test.ports } : {}),
    });
    if (test) log(`test-only upstream override: ${Object.keys(test.ports).join(', ')} lead to host loopback`);
    await s.proxy.listen(rp.egressSock);

    // ---- accelerator, disk
    const probe = await driver.probe(image.kernel);
    for (const t of probe.tried) log(`accelerator probe: ${t.accel} ${t.ok ? 'works' : `failed (${t.detail})`} in ${t.ms} ms`);
    log(`accelerator: ${probe.accel}`);
    // The header check and the host's record, before QEMU or qemu-img opens the disk.
    await prepareSessionDisk(project, id, image.rootfs, s.cfg.vm.disk, log);
    if (existsSync(s.dirtyMarker)) {
      // The last run did not end cleanly: repair leaked clusters before booting again.
      const r = await checkDisk(pp.disk, image.rootfs, true);
      log(`disk check after an unclean stop: ${r.ok ? 'ok' : 'errors'} (leaks left ${r.leaks}, corruptions ${r.corruptions})`);
    }
    writeFileSync(s.dirtyMarker, '');

    // ---- mounts: computed once, before boot (the guest may delete a source later)
    const writableGit = s.cfg.workspace?.writable_git_config === true;
    s.mounts = await driver.setupShares([
      ...s.cfg.mounts.map((m) => ({ host: m.host, guest: m.guest, readonly: m.mode === 'ro', writableGitConfig: writableGit })),
      // The host's agent store, read-only: what every project's agents run (src/agents/store.ts).
      // Nothing in it is a project's, so no session folder to hide and no git walls to raise.
      { host: sharedTreesDir(), guest: AGENT_STORE, readonly: true, hide: [], writableGitConfig: true },
    ]);

    // ---- resume or boot: a saved state is used only when everything it was saved against matches
    const vmReq: VmRequest = {
      name: `vibebox-${shortId(id)}`,
      cpus: s.cfg.vm.cpus,
      memoryBytes: s.cfg.vm.memory,
      kernel: image.kernel,
      initrd: image.initrd,
      cmdline: kernelCmdline(image.manifest),
      disk: pp.disk,
      backing: image.rootfs,
      agentSocket: rp.agentSock,
      agentPortName: AGENT_PORT_NAME,
      egressSocket: rp.egressSock,
      serialLog: pp.serialLog,
    };
    const resumable = await savedStatePlan(sr, vmReq);
    if (resumable) s.nextExec = resumable.nextExec;
    const bootLine = (why?: string) => `booting the VM (${probe.accel}${why ? `; saved state not used: ${why}` : ''})…`;
    if (!resumable) s.announce(bootLine(s.dropped ?? undefined));

    // ---- the agent channel: we listen, QEMU connects as soon as it starts
    const agentServer = createNetServer();
    s.agentServer = agentServer;
    agentServer.on('connection', (sock: Socket) => {
      if (s.agent) {
        sock.destroy();
        return;
      }
      const agent = new AgentChannel(sock);
      s.agent = agent;
      agent.on('message', d.onAgent);
      agent.on('invalid', (why) => log(`agent channel: ${cleanLine(why, 200)}`));
      agent.on('mismatch', (theirs) => {
        // An image built by another vibebox: say what to do now, not after the boot timeout.
        const err = protocolMismatch(theirs, id);
        log(err.message);
        s.readyReject(err);
        void d.stop('agent protocol mismatch');
      });
      agent.on('data', (execId, kind, b) => d.hub.data(execId, kind, b));
    });
    await new Promise<void>((res) => agentServer.listen(rp.agentSock, () => res()));

    // The console log: the guest writes it, so it is capped (one old file) and cleaned like any guest text.
    const serialDecoder = new StringDecoder('utf8');
    const serialLines = new CleanLines();
    // A new boot, a new file; the previous boot's console stays as serial.log.1 for post-mortems.
    const serialLog = new RotatingLog(pp.serialLog, 8 * 1024 * 1024, { fresh: true });
    // The console's last lines name why a boot died (a kernel panic, the initrd's "cannot mount"):
    // they go into the error, so a failure in CI explains itself after its logs are gone.
    let consoleTail: string[] = [];
    const keepTail = (text: string) => {
      if (!text) return text;
      consoleTail = [...consoleTail, ...text.split('\n').filter((l) => l.trim())].slice(-3);
      return text;
    };
    driver.onExit((why) => {
      if (!s.stopping) {
        keepTail(serialLines.flush());
        const last = consoleTail.length ? `; console: ${cleanLine(consoleTail.join(' | '), 400)}` : '';
        s.readyReject(new Error(`the VM exited during boot (${why}${last})`));
        void d.stop('the VM exited').then(() => d.exit(1));
      }
    });
    const consoleSink = (chunk: Buffer) => serialLog.append(keepTail(serialLines.push(serialDecoder.write(chunk))));
    const resumed = resumable ? await tryResume(sr, resumable, vmReq, { console: consoleSink, bootLine, accel: probe.accel }) : false;
    // The agent never noticed the save: it says hello again, gets the time and the setup (mounts).
    s.resumedVm = resumed;
    if (resumed) s.agent?.send({ type: 'resume' });
    else await driver.start({ ...vmReq, console: consoleSink });
    s.resumeKey = { ...(await keyNow(sr, vmReq)) };
    s.hostCas = d.keys ? d.keys.withCa(setupCas()) : setupCas();
  } catch (e) {
    // Clients waiting for the boot get the reason; nothing is left running.
    const err = asVibeboxError(e, 'E_VM_START', `see ${pp.supervisorLog}`);
    log(`start-up failed: ${err.message}`);
    events.emit('failed', errorBody(err));
    s.readyReject(err);
    await d.stop('start-up failed');
    return false;
  }
  // A guest that never says hello must not keep clients waiting forever.
  const bootTimer = setTimeout(() => {
    if (s.state === 'starting') {
      s.readyReject(new Error(`the guest agent did not answer within ${d.bootTimeoutMs / 1000} s`));
      void d.stop('boot timeout');
    }
  }, d.bootTimeoutMs);
  bootTimer.unref();
  return true;
}
