// The walls and windows of a session: mounts, the egress proxy, the vibebox commands and
// approval of a widened vibebox.toml. Real QEMU (TCG here), the real image, the built CLI.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn as ptySpawn } from 'node-pty';
import { CLI, egressLog, pidsMatching, sh, spawnVb, testEnv, until, vb, type TestEnv, bootedSession } from '../helpers/vm.js';

const qemuPids = (t: TestEnv) => pidsMatching(t.home, 'qemu-system');
const sessionId = (proj: string) => /^id = "(.+)"$/m.exec(readFileSync(join(proj, '.vibebox', 'session.toml'), 'utf8'))![1]!;

/** A TCP listener on the host's loopback that counts the connections it gets. */
async function loopbackListener(): Promise<{ port: number; hits: () => number; close: () => void }> {
  let n = 0;
  const srv: Server = createServer((s) => {
    n++;
    s.end('HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  return { port, hits: () => n, close: () => srv.close() };
}

/** Run a shell snippet in the guest (as vibe). */

describe('a session with extra mounts', () => {
  let t: TestEnv;
  let proj: string;
  let roDir: string;
  let roFile: string;
  before(async () => {
    t = testEnv();
    proj = t.project('walls');
    roDir = t.project('ro-data');
    writeFileSync(join(roDir, 'data.txt'), 'original\n');
    // Another project's session folder inside the mounted directory: must stay hidden too.
    mkdirSync(join(roDir, 'other-project', '.vibebox'), { recursive: true });
    writeFileSync(join(roDir, 'other-project', '.vibebox', 'session.toml'), 'id = "secret"\n');
    roFile = join(t.project('cfg'), 'gitconfig');
    writeFileSync(roFile, '[user]\n\tname = host\n');
    writeFileSync(join(proj, 'vibebox.toml'), [
      '[[mounts]]', `host = ${JSON.stringify(roDir)}`, 'guest = "/mnt/ro"', 'mode = "ro"', '',
      '[[mounts]]', `host = ${JSON.stringify(roFile)}`, 'guest = "/home/vibe/.gitconfig"', 'mode = "ro"', '',
    ].join('\n'));
    // Extra mounts are wider than the defaults: a script's first start is refused, not applied.
    const refused = await vb(t, proj, ['exec', '--', 'true']);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /approve/);
    assert.equal(qemuPids(t).length, 0);
    const ok = await vb(t, proj, ['approve', '--yes']);
    assert.equal(ok.code, 0, ok.stderr);
    const r = await vb(t, proj, ['exec', '--', 'true']);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => t.cleanup());

  describe('mounts', () => {
    it('a file written in /workspace is the host user\'s on the host, and the reverse', async () => {
      const r = await sh(t, proj, 'echo from-guest > /workspace/g.txt');
      assert.equal(r.code, 0, r.stderr);
      const st = statSync(join(proj, 'g.txt'));
      assert.equal(readFileSync(join(proj, 'g.txt'), 'utf8'), 'from-guest\n');
      assert.equal(st.uid, process.getuid!());
      assert.equal(st.gid, process.getgid!());
      writeFileSync(join(proj, 'h.txt'), 'from-host\n');
      const back = await sh(t, proj, 'cat /workspace/h.txt; stat -c %U /workspace/h.txt');
      assert.equal(back.code, 0, back.stderr);
      assert.equal(back.stdout, 'from-host\nvibe\n');
    });

    it('a ro directory mount refuses writes, even from guest root after a remount', async () => {
      const r = await sh(t, proj, [
        'cat /mnt/ro/data.txt',
        'echo x > /mnt/ro/data.txt && echo WROTE1',
        'touch /mnt/ro/new && echo WROTE2',
        'sudo sh -c "echo x > /mnt/ro/data.txt" && echo WROTE3',
        'sudo mount -o remount,rw /mnt/ro; sudo sh -c "echo x > /mnt/ro/data.txt; touch /mnt/ro/new2" && echo WROTE4',
        'true',
      ].join('; '));
      assert.match(r.stdout, /^original\n/);
      assert.doesNotMatch(r.stdout, /WROTE/, r.stderr);
      assert.equal(readFileSync(join(roDir, 'data.txt'), 'utf8'), 'original\n');
      assert.equal(existsSync(join(roDir, 'new')), false);
      assert.equal(existsSync(join(roDir, 'new2')), false);
    });

    it('a ro single-file mount refuses writes, even from guest root', async () => {
      const r = await sh(t, proj, [
        'cat ~/.gitconfig',
        'echo x >> ~/.gitconfig && echo WROTE1',
        'sudo sh -c "echo x >> /home/vibe/.gitconfig" && echo WROTE2',
        'sudo mount -o remount,rw,bind /home/vibe/.gitconfig; sudo sh -c "echo x >> /home/vibe/.gitconfig" && echo WROTE3',
        'true',
      ].join('; '));
      assert.match(r.stdout, /name = host/);
      assert.doesNotMatch(r.stdout, /WROTE/, r.stderr);
      assert.equal(readFileSync(roFile, 'utf8'), '[user]\n\tname = host\n');
    });

    it('.vibebox/ is hidden from the guest, also from guest root trying to unmount', async () => {
      assert.ok(existsSync(join(proj, '.vibebox', 'disk.qcow2')));
      const r = await vb(t, proj, ['exec', '-u', 'root', '--', 'sh', '-c', [
        'echo "ls:$(ls -A /workspace/.vibebox | tr "\\n" " ")"',
        'umount /workspace/.vibebox 2>/dev/null; umount -l /workspace/.vibebox 2>/dev/null',
        'echo "after:$(ls -A /workspace/.vibebox | tr "\\n" " ")"',
        'test -e /workspace/.vibebox/disk.qcow2 && echo DISK',
        'test -e /workspace/.vibebox/session.toml && echo SESSION',
        'touch /workspace/.vibebox/planted 2>/dev/null && echo PLANTED',
        'true',
      ].join('; ')]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^ls:\s*$/m);
      assert.match(r.stdout, /^after:\s*$/m);
      assert.doesNotMatch(r.stdout, /DISK|SESSION|PLANTED/);
      assert.equal(existsSync(join(proj, '.vibebox', 'planted')), false);
      // …and so is another project's .vibebox/ inside an extra mount.
      const other = await vb(t, proj, ['exec', '-u', 'root', '--', 'sh', '-c', 'ls -A /mnt/ro/other-project/.vibebox | wc -l; ls /mnt/ro']);
      assert.equal(other.code, 0, other.stderr);
      assert.match(other.stdout, /^0\n/);
      assert.match(other.stdout, /other-project/);
      // The session still works after the attempt.
      assert.equal((await sh(t, proj, 'true')).code, 0);
    });
  });

  describe('network', () => {
    it('reaches an allowed host through the proxy', async () => {
      // The guest trusts the CAs the host trusts (a host behind a TLS-inspecting egress has its own).
      const bundle = [process.env['CURL_CA_BUNDLE'], process.env['SSL_CERT_FILE'], '/etc/ssl/certs/ca-certificates.crt'].find((f) => f && existsSync(f));
      if (bundle) writeFileSync(join(proj, 'host-ca.pem'), readFileSync(bundle));
      const ca = bundle ? '--cacert /workspace/host-ca.pem' : '';
      const r = await sh(t, proj, `curl -sS -o /dev/null --max-time 60 ${ca} -w '%{http_code}' https://registry.npmjs.org/`);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^[23]\d\d$/);
    });

    it('answers a blocked host with 451 and the X-Vibebox-Egress header (HTTP and HTTPS)', async () => {
      const http = await sh(t, proj, 'curl -sSI --max-time 30 http://example.com/');
      assert.match(http.stdout, /^HTTP\/1\.[01] 451/);
      assert.match(http.stdout, /X-Vibebox-Egress: blocked; reason=[a-z_]+; add-via='vibebox allow example.com'/i);
      const https = await sh(t, proj, "curl -s -v -o /dev/null --max-time 30 -w 'connect=%{http_connect}' https://example.com/");
      assert.notEqual(https.code, 0);
      assert.match(https.stdout, /connect=451/);
      assert.match(https.stderr, /X-Vibebox-Egress: blocked; reason=[a-z_]+; add-via='vibebox allow example.com'/i);
    });

    it('a direct TCP connection to the host fails, even as root, and the listener sees nothing', async () => {
      const l = await loopbackListener();
      try {
        const r = await sh(t, proj, [
          `sudo timeout 8 bash -c 'exec 3<>/dev/tcp/10.0.2.2/${l.port}' 2>/dev/null && echo TCP-OPEN`,
          `sudo curl -s --noproxy '*' --max-time 8 http://10.0.2.2:${l.port}/ && echo CURL-OK`,
          `sudo timeout 8 bash -c 'exec 3<>/dev/tcp/10.0.2.3/${l.port}' 2>/dev/null && echo DNS-OPEN`,
          'true',
        ].join('; '));
        assert.equal(r.code, 0, r.stderr);
        assert.doesNotMatch(r.stdout, /TCP-OPEN|CURL-OK|DNS-OPEN|hi/);
        assert.equal(l.hits(), 0);
      } finally {
        l.close();
      }
    });

    it('the proxy refuses the host loopback (127.0.0.1, localhost, ::1) with 451', async () => {
      const l = await loopbackListener();
      try {
        for (const u of [`http://127.0.0.1:${l.port}/`, `http://localhost:${l.port}/`, `http://[::1]:${l.port}/`]) {
          const r = await sh(t, proj, `curl -s -D - -o /dev/null --noproxy '' -x http://10.0.2.100:3128 --max-time 30 ${u}`);
          assert.match(r.stdout, /^HTTP\/1\.[01] 451/, `${u}: ${r.stdout}${r.stderr}`);
          assert.match(r.stdout, /X-Vibebox-Egress: blocked; reason=loopback/i, u);
        }
        // And as a CONNECT tunnel.
        const c = await sh(t, proj, `curl -s -o /dev/null --noproxy '' -p -x http://10.0.2.100:3128 --max-time 30 -w '%{http_connect}' http://127.0.0.1:${l.port}/`);
        assert.equal(c.stdout, '451');
        assert.equal(l.hits(), 0);
      } finally {
        l.close();
      }
      const denied = egressLog(proj).filter((e) => e.decision === 'deny' && e.reason === 'loopback');
      assert.ok(denied.length >= 4, JSON.stringify(denied));
    });

    it('`vibebox allow` lets a blocked host through without restarting the VM; egress.log records it', async () => {
      const boot = (await sh(t, proj, 'cat /proc/sys/kernel/random/boot_id')).stdout;
      const probe = "curl -s -o /dev/null -D /tmp/h --max-time 60 -w '%{http_code}' http://example.com/; echo; cat /tmp/h";
      const before = await sh(t, proj, probe);
      assert.match(before.stdout, /^451\n/);
      const a = await vb(t, proj, ['allow', 'example.com']);
      assert.equal(a.code, 0, a.stderr);
      assert.match(a.stdout, /applied to the running session/);
      const after = await sh(t, proj, probe);
      // This machine cannot reach example.com: the proxy now tries (a 502 or a timeout), it no longer blocks.
      assert.doesNotMatch(after.stdout, /^451\n/, after.stdout);
      assert.doesNotMatch(after.stdout, /X-Vibebox-Egress: blocked/i);
      assert.equal((await sh(t, proj, 'cat /proc/sys/kernel/random/boot_id')).stdout, boot);
      const log = egressLog(proj).filter((e) => e.host === 'example.com');
      assert.ok(log.some((e) => e.decision === 'deny' && e.status === 451), JSON.stringify(log));
      assert.ok(log.some((e) => e.decision === 'allow'), JSON.stringify(log));
      assert.ok(egressLog(proj).some((e) => e.host === 'registry.npmjs.org' && e.decision === 'allow'));
      const d = await vb(t, proj, ['deny', 'example.com']);
      assert.equal(d.code, 0, d.stderr);
      assert.match((await sh(t, proj, probe)).stdout, /^451\n/);
    });
  });

  describe('the vibebox commands', () => {
    it(':explain --json in the guest matches `vibebox explain --json` on the host', async () => {
      const g = await vb(t, proj, ['exec', '--', ':explain', '--json']);
      assert.equal(g.code, 0, g.stderr);
      const h = await vb(t, proj, ['explain', '--json']);
      assert.equal(h.code, 0, h.stderr);
      const guest = JSON.parse(g.stdout) as Record<string, unknown>;
      assert.deepEqual(guest, JSON.parse(h.stdout));
      assert.deepEqual((guest['mounts'] as { guest: string; mode: string }[]).map((m) => `${m.guest} ${m.mode}`), ['/workspace rw', '/mnt/ro ro', '/home/vibe/.gitconfig ro']);
      assert.deepEqual(guest['storage'], { config: 'vibebox.toml', state: '.vibebox/' });
      const text = await vb(t, proj, ['exec', '--', ':explain']);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, new RegExp(`${roDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} → /mnt/ro \\(ro\\)`));
      assert.match(text.stdout, /registry\.npmjs\.org/);
    });

    it(':help lists the commands', async () => {
      const r = await vb(t, proj, ['exec', '--', ':help']);
      assert.equal(r.code, 0, r.stderr);
      for (const c of [':explain', ':new', ':exit', ':help']) assert.match(r.stdout, new RegExp(`^\\s+${c}\\s`, 'm'));
    });

    it(':exit ends only its own client; another client and the VM stay', async () => {
      const qemu = qemuPids(t);
      const other = spawnVb(t, proj, ['exec', '--', 'sh', '-c', 'sleep 30; echo survived']);
      let otherOut = '';
      other.stdout!.on('data', (d: Buffer) => (otherOut += d.toString()));
      const otherExit = new Promise<number | null>((r) => other.on('close', (c) => r(c)));
      let otherDone = false;
      void otherExit.then(() => (otherDone = true));
      try {
        await until(async () => {
          const l = await vb(t, proj, ['list', '--json']);
          return ((JSON.parse(l.stdout) as { refs: number }[])[0]?.refs ?? 0) >= 1;
        }, 30_000, 'the long client to attach');
        const t0 = Date.now();
        const r = await sh(t, proj, ':exit; sleep 20; echo not-reached');
        assert.equal(r.code, 0, r.stderr);
        assert.ok(Date.now() - t0 < 15_000, `:exit took ${Date.now() - t0} ms`);
        assert.doesNotMatch(r.stdout, /not-reached/);
        assert.equal(otherDone, false, 'the other client ended too');
        assert.deepEqual(qemuPids(t), qemu);
        assert.equal((await sh(t, proj, 'echo alive')).stdout, 'alive\n');
        const l = await vb(t, proj, ['list', '--json']);
        assert.ok((JSON.parse(l.stdout) as { refs: number }[])[0]!.refs >= 1);
      } finally {
        other.kill('SIGTERM');
        await otherExit;
      }
      void otherOut;
    });

    it(':new asks, then replaces the session with a fresh disk, and the shell reattaches', async () => {
      const id = sessionId(proj);
      const w = await sh(t, proj, 'echo kept > ~/marker');
      assert.equal(w.code, 0, w.stderr);
      // Answering no keeps everything.
      const no = await vb(t, proj, ['exec', '--', ':new'], { input: 'n\n' });
      assert.notEqual(no.code, 0);
      assert.equal(sessionId(proj), id);
      const term = ptySpawn(process.execPath, [CLI], { cwd: proj, env: t.env as Record<string, string>, cols: 100, rows: 30 });
      let out = '';
      term.onData((d) => (out += d));
      const exited = new Promise<number>((r) => term.onExit((e) => r(e.exitCode)));
      try {
        await until(() => /vibe@/.test(out) || /\$ $/.test(out), 60_000, 'the first prompt');
        term.write(':new\r');
        await until(() => /\[y\/N\]/.test(out), 30_000, 'the :new question');
        term.write('y\r');
        await until(() => existsSync(join(proj, '.vibebox', 'session.toml')) && sessionId(proj) !== id, 120_000, 'a new session id');
        const mark = out.length;
        await until(() => /vibe@|\$ $/.test(out.slice(mark)), 120_000, 'the reattached prompt');
        term.write('test -e ~/marker && echo MARK-PRESENT || echo MARK-ABSENT; exit\r');
        const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('no exit within 60 s'), 60_000))]);
        assert.equal(code, 0, out);
        assert.match(out, /MARK-ABSENT/, out);
      } finally {
        term.kill();
      }
      assert.notEqual(sessionId(proj), id);
      const again = await sh(t, proj, 'test -e ~/marker && echo present || echo absent');
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout, 'absent\n');
      assert.equal(qemuPids(t).length, 1);
    });
  });
});

describe('approval of a vibebox.toml widened from inside the guest', () => {
  let t: TestEnv;
  let proj: string;
  const blocked = "curl -s -o /dev/null --max-time 60 -w '%{http_code}' http://example.com/";
  before(async () => {
    ({ t, proj } = await bootedSession('approve'));
  });
  after(() => t.cleanup());

  it('changes nothing in the running session, even after a reload', async () => {
    const extra = t.project('secret');
    const w = await sh(t, proj, [
      // The default file has an [network] entries array; append a wider one and a mount.
      `sed -i 's/^entries = \\[/entries = [ "example.com",/' /workspace/vibebox.toml`,
      `printf '\\n[[mounts]]\\nhost = "${extra}"\\nguest = "/mnt/secret"\\nmode = "rw"\\n' >> /workspace/vibebox.toml`,
    ].join('; '));
    assert.equal(w.code, 0, w.stderr);
    const toml = readFileSync(join(proj, 'vibebox.toml'), 'utf8');
    assert.match(toml, /"example\.com"/, toml);
    assert.equal((await sh(t, proj, blocked)).stdout, '451');
    // An unrelated host-side change reloads the policy: the guest's widening is still not applied.
    const d = await vb(t, proj, ['deny', 'some.host.invalid']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal((await sh(t, proj, blocked)).stdout, '451');
    const e = JSON.parse((await vb(t, proj, ['explain', '--json'])).stdout) as { network: { entries: string[] }; mounts: unknown[] };
    assert.equal(e.network.entries.includes('example.com'), false);
    assert.equal(e.mounts.length, 1);
  });

  it('is refused at the next start without approval, and applies after `vibebox approve --yes`', async () => {
    const s = await vb(t, proj, ['stop']);
    assert.equal(s.code, 0, s.stderr);
    await until(() => qemuPids(t).length === 0, 60_000, 'the VM to stop');
    const refused = await vb(t, proj, ['exec', '--', 'true']);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /approve/);
    assert.match(refused.stderr, /example\.com/);
    assert.equal(qemuPids(t).length, 0);
    const a = await vb(t, proj, ['approve', '--yes']);
    assert.equal(a.code, 0, a.stderr);
    const boot = await sh(t, proj, 'test -d /mnt/secret && echo mounted');
    assert.equal(boot.code, 0, boot.stderr);
    assert.equal(boot.stdout, 'mounted\n');
    assert.notEqual((await sh(t, proj, blocked)).stdout, '451');
  });
});
