// `npm run bench` (README.md, Benchmark): every figure side by side with its floor, in one run, on
// this machine, with an isolated VIBEBOX_HOME and a throwaway project. Medians of several runs.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildArgv } from '../qemu/argv.js';
import { qemuBinary } from '../qemu/accel.js';
import { findImage, kernelCmdline } from '../images/build.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(ROOT, 'dist', 'vibebox.js');
const RUNS = Number(process.env['BENCH_RUNS'] ?? 15);
const BOOT_RUNS = Number(process.env['BENCH_BOOT_RUNS'] ?? 3);
const WORK_RUNS = Number(process.env['BENCH_WORK_RUNS'] ?? 3);
// virtiofsd holds an fd per inode the guest caches: the tree must fit under the host's hard
// RLIMIT_NOFILE (20,000 on the CI machine, so it runs with 15,000 there).
const WORK_FILES = Number(process.env['BENCH_WORK_FILES'] ?? 20000);
/** `npm run bench -- --explain`: also where a warm exec's milliseconds go. */
const EXPLAIN = process.argv.includes('--explain');
/** `npm run bench -- --only-resume`: the floor, a restart that boots and a resume from saved state, nothing else. */
const ONLY_RESUME = process.argv.includes('--only-resume');
/** `npm run bench -- --only-first-run`: cold start, warm exec and the first agent runs (new project, this VM), nothing else. */
const ONLY_FIRST_RUN = process.argv.includes('--only-first-run');
/** `npm run bench -- --fuse-options`: mount I/O under each FUSE tuning option alone, nothing else. */
const FUSE_OPTIONS = process.argv.includes('--fuse-options');
const FUSE_VARIANTS: readonly string[] = ['', 'timeout=0', 'timeout=5', 'no_readdirplus', 'writeback', 'cache=always'];

interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

function stat(xs: number[]): Stat {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length };
}

function timeRun(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

function pidsUnder(fragment: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(fragment)) out.push(Number(p));
    } catch {
      /* gone */
    }
  }
  return out;
}

function rssKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function pssKiB(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** The session's id12 (its run directory's name) from the project's session.toml. */
function id12Of(proj: string): string {
  return /^id = "(.+)"$/m.exec(readFileSync(join(proj, '.vibebox', 'session.toml'), 'utf8'))![1]!.replace(/-/g, '').slice(-12);
}

/** Supervisor, QEMU and virtiofsd of a project's session. */
function sessionPids(home: string, proj: string): number[] {
  return [...new Set([...pidsUnder(join(home, 'run', id12Of(proj))), ...pidsUnder(`__supervise\0${proj}`)])];
}

/** PSS, not RSS: QEMU and virtiofsd both map the guest's RAM; summing RSS would count it twice. */
const pssMb = (pids: number[]): number => pids.reduce((a, p) => a + pssKiB(p), 0) / 1024;

async function untilGone(fragment: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pidsUnder(fragment).length > 0) {
    if (Date.now() > deadline) throw new Error(`processes under ${fragment} did not exit`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// 5,000 small files created, stat'ed and read in a directory of the guest; ms, timed in the guest.
const ioScript = (dir: string) =>
  `set -e; d=${dir}/bench-io; rm -rf $d; mkdir -p $d; cd $d; s=$(date +%s%N); ` +
  `i=0; while [ $i -lt 5000 ]; do echo "file $i" > f$i; i=$((i+1)); done; ` +
  `find . -type f | xargs stat -c %s > /dev/null; cat f* > /dev/null; e=$(date +%s%N); cd /; rm -rf $d; echo $(( (e - s) / 1000000 ))`;
function ioRun(env: NodeJS.ProcessEnv, proj: string, dir: string): number {
  const r = spawnSync(process.execPath, [CLI, 'exec', '--', 'sh', '-c', ioScript(dir)], { env, cwd: proj, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mount I/O failed: ${r.stderr}`);
  return Number(r.stdout.trim());
}

/** Mount I/O with each FUSE tuning option alone (VIBEBOX_VIRTIOFSD_OPTS), a fresh session each,
 *  against guest-local in the same VM at the same time. */
function fuseOptions(base: string, env: NodeJS.ProcessEnv, log: (s: string) => void): void {
  const rows: string[][] = [];
  for (const v of FUSE_VARIANTS) {
    const p = join(base, `fuse-${v.replace(/[^a-z0-9]/g, '_') || 'default'}`);
    mkdirSync(p);
    const e = { ...env, VIBEBOX_VIRTIOFSD_OPTS: v };
    try {
      timeRun(process.execPath, [CLI, 'exec', '--', 'true'], e, p);
      const m: number[] = [];
      const l: number[] = [];
      for (let i = 0; i < WORK_RUNS; i++) {
        m.push(ioRun(e, p, '/workspace'));
        l.push(ioRun(e, p, '/home/vibe'));
      }
      const sm = stat(m);
      const sl = stat(l);
      log(`fuse ${v || 'defaults'}: /workspace ${sm.median} ms, guest-local ${sl.median} ms`);
      rows.push([v || 'defaults (cache=auto, timeout 1 s, readdirplus)', `${sm.median} (${sm.min}–${sm.max}) ms`, `${sl.median} ms`, `${(sm.median / sl.median).toFixed(2)}×`]);
    } finally {
      spawnSync(process.execPath, [CLI, 'stop'], { env: e, cwd: p });
    }
  }
  process.stdout.write(`mount I/O (5,000 files) by FUSE option, ${WORK_RUNS} runs each, medians (min–max)\n\n| option | /workspace | guest-local | ratio |\n|---|---|---|---|\n`);
  for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error('run `npm run build` first');
  const base = mkdtempSync(join(tmpdir(), 'vibebox-bench-'));
  const home = join(base, 'home');
  mkdirSync(home);
  // Reuse a built image when there is one (same digest ⇒ same image); otherwise build it here.
  const cache = process.env['VIBEBOX_IMAGE_CACHE'] ?? join(tmpdir(), 'vibebox-image-cache');
  mkdirSync(cache, { recursive: true });
  execFileSync(process.execPath, [CLI, 'image', 'build'], { env: { ...process.env, VIBEBOX_HOME: cache }, stdio: ['ignore', 'ignore', 'inherit'] });
  symlinkSync(join(cache, 'images'), join(home, 'images'));
  // VIBEBOX_TIMING: the client prints its marks, the supervisor logs its own (see warmExecBreakdown).
  const env: NodeJS.ProcessEnv = { ...process.env, VIBEBOX_HOME: home, VIBEBOX_AUTO_SHUTDOWN_MS: '600000', ...(EXPLAIN ? { VIBEBOX_TIMING: '1' } : {}) };
  const proj = join(base, 'project');
  mkdirSync(proj);
  const results: Record<string, unknown> = {};
  const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
  try {
    // ---- one untimed start first: the accelerator probe runs once per machine and is cached
    const warmup = join(base, 'warmup');
    mkdirSync(warmup);
    timeRun(process.execPath, [CLI, 'exec', '--', 'true'], env, warmup);
    timeRun(process.execPath, [CLI, 'stop'], env, warmup);
    if (FUSE_OPTIONS) return fuseOptions(base, env, log);
    if (ONLY_FIRST_RUN) return firstRuns(base, env, log);

    // ---- cold start: brand-new session, image present
    const cold: number[] = [];
    for (let i = 0; i < (ONLY_RESUME ? 0 : BOOT_RUNS); i++) {
      const p = join(base, `cold${i}`);
      mkdirSync(p);
      cold.push(timeRun(process.execPath, [CLI, 'exec', '--', 'true'], env, p));
      timeRun(process.execPath, [CLI, 'stop'], env, p);
      log(`cold start ${i + 1}/${BOOT_RUNS}: ${cold[i]!.toFixed(0)} ms`);
    }
    await untilGone(home + '/run', 60_000);

    // ---- the floor: same QEMU, accelerator, kernel and initrd, init powers off at once
    timeRun(process.execPath, [CLI, 'exec', '--', 'true'], env, proj); // creates the session + disk
    // VIBEBOX_ACCEL skips the probe (and its cache file).
    const forced = process.env['VIBEBOX_ACCEL'];
    const accel = forced === 'kvm' || forced === 'tcg' || forced === 'hvf' ? forced : (JSON.parse(readFileSync(join(home, 'accel.json'), 'utf8')) as { accel: 'kvm' | 'tcg' | 'hvf' }).accel;
    const session = readFileSync(join(proj, '.vibebox', 'session.toml'), 'utf8');
    const digest = /digest = "(.+)"/.exec(session)![1]!;
    const image = (await findImage('default', digest, home))!;
    const floorDir = join(base, 'floor');
    mkdirSync(floorDir);
    const floorDisk = join(floorDir, 'disk.qcow2');
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image.rootfs, floorDisk]);
    const floorArgv = buildArgv({
      name: 'vibebox-floor', accel, cpus: 2, memoryBytes: 2 * 1024 ** 3, kernel: image.kernel, initrd: image.initrd,
      cmdline: kernelCmdline(image.manifest, ['vibebox.floor']), disk: floorDisk, backing: image.rootfs,
      qmpSocket: join(floorDir, 'qmp.sock'), agentSocket: join(floorDir, 'agent.sock'), agentPortName: 'org.vibebox.agent.0',
      serialLog: join(floorDir, 'serial.log'), pidFile: join(floorDir, 'qemu.pid'), shares: [],
    });
    // The agent chardev connects to a listener: give it one that accepts and ignores.
    const { createServer } = await import('node:net');
    const sink = createServer((s) => s.resume()).listen(join(floorDir, 'agent.sock'));
    await new Promise((r) => sink.once('listening', r));
    const floor: number[] = [];
    for (let i = 0; i < BOOT_RUNS; i++) {
      const t0 = process.hrtime.bigint();
      await new Promise<void>((res, rej) => {
        const q = spawn(qemuBinary(), floorArgv, { stdio: 'ignore' });
        q.on('exit', (code) => (code === 0 ? res() : rej(new Error(`floor qemu exited ${code}`))));
      });
      floor.push(Number(process.hrtime.bigint() - t0) / 1e6);
      log(`floor boot ${i + 1}/${BOOT_RUNS}: ${floor[i]!.toFixed(0)} ms`);
    }
    sink.close();

    // ---- warm exec against node -e 0
    const warm: number[] = [];
    const node: number[] = [];
    for (let i = 0; i < (ONLY_RESUME ? 0 : RUNS); i++) {
      node.push(timeRun(process.execPath, ['-e', '0'], env, proj));
      warm.push(timeRun(process.execPath, [CLI, 'exec', '--', 'true'], env, proj));
    }
    if (!ONLY_RESUME) log(`warm exec median ${stat(warm).median.toFixed(0)} ms, node -e 0 ${stat(node).median.toFixed(0)} ms`);
    const breakdown = EXPLAIN ? warmExecBreakdown(env, proj, RUNS) : null;

    // ---- idle host memory: supervisor + QEMU + virtiofsd of this session, before any container
    await new Promise((r) => setTimeout(r, 2000));
    const id12 = id12Of(proj);
    const idlePids = sessionPids(home, proj);
    const rss = pssMb(idlePids);
    const peak = idlePids.reduce((a, p) => a + rssKiB(p, 'VmHWM'), 0) / 1024;
    log(`idle host memory ${rss.toFixed(0)} MB PSS (sum of peak RSS ${peak.toFixed(0)} MB) over ${idlePids.length} processes`);

    // ---- the agent container: the first `run` in this VM (dockerd, network, relay, controller,
    // container create + start; the base is in the guest's Docker store), then warm `run -- true`
    // next to warm `exec -- true` (`--only-first-run` also times a new project's first run, boot included)
    const firstRun = ONLY_RESUME ? 0 : timeRun(process.execPath, [CLI, 'run', '--', 'true'], env, proj);
    if (!ONLY_RESUME) log(`first run -- true in this VM: ${firstRun.toFixed(0)} ms`);
    const warmRun: number[] = [];
    const warmExec2: number[] = [];
    for (let i = 0; i < (ONLY_RESUME ? 0 : RUNS); i++) {
      warmExec2.push(timeRun(process.execPath, [CLI, 'exec', '--', 'true'], env, proj));
      warmRun.push(timeRun(process.execPath, [CLI, 'run', '--', 'true'], env, proj));
    }
    if (!ONLY_RESUME) log(`warm run median ${stat(warmRun).median.toFixed(0)} ms, warm exec ${stat(warmExec2).median.toFixed(0)} ms`);

    // ---- the same once the agent container has run (dockerd, the base image, the container), after
    // the guest has had time to write back and drop the import's page cache
    await new Promise((r) => setTimeout(r, 30_000));
    const rssAfterRun = ONLY_RESUME ? 0 : pssMb(sessionPids(home, proj));
    if (!ONLY_RESUME) log(`idle host memory after the agent container ran: ${rssAfterRun.toFixed(0)} MB PSS`);

    // ---- mount I/O: 5,000 small files created, stat'ed and read, /workspace vs guest-local
    const io = (dir: string) => ioRun(env, proj, dir);
    const ioMount: number[] = [];
    const ioLocal: number[] = [];
    for (let i = 0; i < (ONLY_RESUME ? 0 : 3); i++) {
      ioMount.push(io('/workspace'));
      ioLocal.push(io('/home/vibe'));
    }
    if (!ONLY_RESUME) log(`mount I/O median ${stat(ioMount).median} ms vs guest-local ${stat(ioLocal).median} ms`);

    // ---- workspace work: git status + a full read of a 20,000-file tree, /workspace vs [workspace]
    // local vs guest-local, in a project of its own (a session with local = ["node_modules"])
    const work = ONLY_RESUME ? null : workspaceWork(base, env, log);

    // ---- four sessions: 4 projects started together on this machine; PSS of each idle session;
    // warm exec of one while the other three sit idle, against the single-session figure
    const four = ONLY_RESUME ? null : await fourSessions(base, env, log);

    // ---- restart after auto-shutdown, without a saved state (VIBEBOX_SUSPEND=0): a boot
    writeFileSync(join(proj, 'vibebox.toml'), readFileSync(join(proj, 'vibebox.toml'), 'utf8').replace(/auto_shutdown_ms = \d+/, 'auto_shutdown_ms = 500'));
    const resumeEnv = { ...env };
    delete resumeEnv['VIBEBOX_AUTO_SHUTDOWN_MS'];
    const bootEnv = { ...resumeEnv, VIBEBOX_SUSPEND: '0' };
    timeRun(process.execPath, [CLI, 'stop'], env, proj);
    const resume: number[] = [];
    for (let i = 0; i < BOOT_RUNS; i++) {
      // Never start while the last one shuts down (a client racing the teardown gets a reset).
      await untilGone(join(home, 'run', id12), 60_000);
      await untilGone(`__supervise\0${proj}`, 60_000);
      timeRun(process.execPath, [CLI, 'exec', '--', 'true'], bootEnv, proj);
      await untilGone(join(home, 'run', id12), 60_000); // auto-shutdown after 500 ms idle
      await untilGone(`__supervise\0${proj}`, 60_000);
      resume.push(timeRun(process.execPath, [CLI, 'exec', '--', 'true'], bootEnv, proj));
      log(`restart (boot) ${i + 1}/${BOOT_RUNS}: ${resume[i]!.toFixed(0)} ms`);
    }
    await untilGone(join(home, 'run', id12), 60_000);

    // ---- resume from saved state: the auto-shutdown saves the VM, the next exec resumes it
    const saved = join(proj, '.vibebox', 'saved-state');
    const savedBytes: number[] = [];
    const saveMs: number[] = [];
    const resumeSaved: number[] = [];
    timeRun(process.execPath, [CLI, 'exec', '--', 'true'], resumeEnv, proj); // boots (the last stop saved nothing)
    for (let i = 0; i < BOOT_RUNS; i++) {
      await untilGone(join(home, 'run', id12), 120_000);
      await untilGone(`__supervise\0${proj}`, 60_000);
      if (!existsSync(saved)) throw new Error(`the auto-shutdown saved no state; supervisor.log ends:\n${readFileSync(join(proj, '.vibebox', 'supervisor.log'), 'utf8').split('\n').slice(-25).join('\n')}`);
      savedBytes.push(statSync(saved).size + (existsSync(`${saved}.ram`) ? statSync(`${saved}.ram`).size : 0));
      const sm = [...readFileSync(join(proj, '.vibebox', 'supervisor.log'), 'utf8').matchAll(/suspended in (\d+) ms/g)].pop();
      if (sm) saveMs.push(Number(sm[1]));
      resumeSaved.push(timeRun(process.execPath, [CLI, 'exec', '--', 'true'], resumeEnv, proj));
      if (existsSync(saved)) throw new Error('the exec did not resume from the saved state (see .vibebox/supervisor.log)');
      log(`resume from saved state ${i + 1}/${BOOT_RUNS}: ${resumeSaved[i]!.toFixed(0)} ms (state ${(savedBytes[i]! / 1e6).toFixed(1)} MB, saved in ${saveMs[i] ?? '?'} ms)`);
    }
    await untilGone(join(home, 'run', id12), 120_000);
    const f = (s: Stat) => `${s.median.toFixed(0)} (${s.min.toFixed(0)}–${s.max.toFixed(0)})`;
    const ratio = (a: Stat, b: Stat) => Number((a.median / b.median).toFixed(2));
    const R = { floor: stat(floor), boot: stat(resume), saved: stat(resumeSaved), bytes: stat(savedBytes), save: stat(saveMs.length ? saveMs : [0]) };
    const resumeRows = [
      ['restart after auto-shutdown (a boot)', `${f(R.boot)} ms`, `floor boot: ${f(R.floor)} ms`, `${ratio(R.boot, R.floor)}×`, '≤ 1.5×'],
      ['resume from saved state', `${f(R.saved)} ms`, `floor boot: ${f(R.floor)} ms`, `${ratio(R.saved, R.floor)}× (${ratio(R.saved, R.boot)}× the restart)`, '≤ 0.5×'],
      ['saved state on disk (2 GiB guest)', `${(R.bytes.median / 1e6).toFixed(1)} MB, saved in ${f(R.save)} ms`, '—', '—', '—'],
    ];
    if (ONLY_RESUME) {
      process.stdout.write(`accelerator: ${accel}, ${cpus().length} cores, medians (min–max)\n\n| figure | vibebox | floor | ratio | target |\n|---|---|---|---|---|\n`);
      for (const r of resumeRows) process.stdout.write(`| ${r.join(' | ')} |\n`);
      return;
    }
    if (!work || !four) throw new Error('unreachable: these figures run unless --only-resume');

    const S = { warmRun: stat(warmRun), warmExec2: stat(warmExec2), warm: stat(warm), node: stat(node), cold: stat(cold), floor: stat(floor), resume: stat(resume), ioMount: stat(ioMount), ioLocal: stat(ioLocal) };
    Object.assign(results, {
      date: new Date().toISOString(),
      machine: { cores: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', accel, node: process.version, qemu: execFileSync(qemuBinary(), ['--version'], { encoding: 'utf8' }).split('\n')[0] },
      warm_exec_ms: S.warm, node_e0_ms: S.node, warm_ratio: ratio(S.warm, S.node),
      cold_start_ms: S.cold, floor_boot_ms: S.floor, cold_ratio: ratio(S.cold, S.floor),
      resume_ms: S.resume, resume_ratio: ratio(S.resume, S.floor),
      resume_saved_ms: R.saved, resume_saved_ratio: ratio(R.saved, R.floor), saved_state_bytes: R.bytes.median, save_ms: R.save,
      mount_io_ms: S.ioMount, local_io_ms: S.ioLocal, io_ratio: ratio(S.ioMount, S.ioLocal),
      idle_host_memory_pss_mb: Math.round(rss), idle_host_memory_after_container_pss_mb: Math.round(rssAfterRun), idle_host_memory_peak_rss_sum_mb: Math.round(peak),
      workspace_work_files: WORK_FILES, workspace_work_mount_ms: work.mount, workspace_work_local_dirs_ms: work.local, workspace_work_guest_local_ms: work.floor,
      workspace_work_mount_ratio: ratio(work.mount, work.floor), workspace_work_local_dirs_ratio: ratio(work.local, work.floor),
      ...(breakdown ? { warm_exec_breakdown_ms: breakdown } : {}),
      four_sessions_all_answering_ms: Math.round(four.allMs), four_sessions_pss_mb: four.pssMb, four_sessions_warm_exec_ms: four.warm,
      four_sessions_warm_ratio: ratio(four.warm, S.warm),
      first_container_run_ms: Math.round(firstRun), warm_run_ms: S.warmRun, warm_exec_beside_run_ms: S.warmExec2, warm_run_ratio: ratio(S.warmRun, S.warmExec2),
    });
    writeFileSync(join(ROOT, 'bench', 'results.json'), JSON.stringify(results, null, 2) + '\n');
    const rows = [
      ['warm exec', `${f(S.warm)} ms`, `node -e 0: ${f(S.node)} ms`, `${ratio(S.warm, S.node)}×`, '≤ 1.6×'],
      ['warm run (`run -- true`, agent container)', `${f(S.warmRun)} ms`, `warm exec: ${f(S.warmExec2)} ms`, `${ratio(S.warmRun, S.warmExec2)}×`, '≤ 2×'],
      ['first `run -- true` in a VM already up (dockerd, relay, controller, container)', `${(firstRun / 1000).toFixed(1)} s`, `cold start: ${f(S.cold)} ms`, `${(firstRun / S.cold.median).toFixed(2)}×`, '≤ 3×'],
      ['cold start', `${f(S.cold)} ms`, `floor boot: ${f(S.floor)} ms`, `${ratio(S.cold, S.floor)}×`, '≤ 1.5×'],
      ...resumeRows,
      ['mount I/O (5,000 files)', `${f(S.ioMount)} ms`, `guest-local: ${f(S.ioLocal)} ms`, `${ratio(S.ioMount, S.ioLocal)}×`, '≤ 3×'],
      [`workspace work (git status + read ${WORK_FILES.toLocaleString('en')} files)`, `${f(work.mount)} ms`, `guest-local: ${f(work.floor)} ms`, `${ratio(work.mount, work.floor)}×`, '—'],
      ['… the tree in a `local` dir (node_modules)', `${f(work.local)} ms`, `guest-local: ${f(work.floor)} ms`, `${ratio(work.local, work.floor)}×`, '—'],
      ['four sessions started together: all answering', `${(four.allMs / 1000).toFixed(1)} s`, `one cold start: ${f(S.cold)} ms`, `${(four.allMs / S.cold.median).toFixed(2)}×`, '—'],
      ['… PSS per idle session', four.pssMb.map((m) => `${m} MB`).join(', '), '—', '—', '≤ 350 MB'],
      ['… warm exec of one, three idle', `${f(four.warm)} ms`, `one session: ${f(S.warm)} ms`, `${ratio(four.warm, S.warm)}×`, '≤ 2×'],
      ['idle host memory (2 GiB guest)', `${Math.round(rss)} MB PSS (peak RSS sum ${Math.round(peak)})`, '—', '—', '≤ 350 MB'],
      ['… after the agent container ran (dockerd, base image, container)', `${Math.round(rssAfterRun)} MB PSS`, '—', '—', '—'],
    ];
    process.stdout.write(`accelerator: ${accel}, ${cpus().length} cores, medians (min–max)\n\n`);
    process.stdout.write('| figure | vibebox | floor | ratio | target |\n|---|---|---|---|---|\n');
    for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
    if (breakdown) {
      process.stdout.write(`\nwarm exec (\`exec -- true\`), where the milliseconds go (medians of ${RUNS}):\n\n| part | ms |\n|---|---|\n`);
      for (const [k, v] of Object.entries(breakdown)) process.stdout.write(`| ${k} | ${v.toFixed(1)} |\n`);
    }
  } finally {
    spawnSync(process.execPath, [CLI, 'stop'], { env, cwd: proj });
    for (const p of pidsUnder(base)) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    rmSync(base, { recursive: true, force: true });
  }
}

/**
 * The first agent runs: a new project's first `run -- true` (boot, dockerd, relay, controller and
 * agent container: the base image is already in the guest's Docker store) against a cold
 * `exec -- true`; then, in a VM already up, its first `run -- true`, and warm run against warm exec.
 * With --explain: where the first run's seconds went, from dockerd's log and Docker's events.
 */
function firstRuns(base: string, env: NodeJS.ProcessEnv, log: (s: string) => void): void {
  const cold: number[] = [];
  const first: number[] = [];
  const explain: string[] = [];
  for (let i = 0; i < BOOT_RUNS; i++) {
    const c = join(base, `fr-cold${i}`);
    mkdirSync(c);
    cold.push(timeRun(process.execPath, [CLI, 'exec', '--', 'true'], env, c));
    timeRun(process.execPath, [CLI, 'stop'], env, c);
    const p = join(base, `fr-new${i}`);
    mkdirSync(p);
    first.push(timeRun(process.execPath, [CLI, 'run', '--', 'true'], env, p));
    log(`cold start ${cold[i]!.toFixed(0)} ms; first run -- true in a new project ${first[i]!.toFixed(0)} ms`);
    if (EXPLAIN && i === 0) explain.push(...firstRunBreakdown(env, p));
    timeRun(process.execPath, [CLI, 'stop'], env, p);
  }
  // A VM already up (its shell used): the first run in it, then warm run against warm exec.
  const p = join(base, 'fr-vm');
  mkdirSync(p);
  timeRun(process.execPath, [CLI, 'exec', '--', 'true'], env, p);
  const warm: number[] = [];
  for (let i = 0; i < RUNS; i++) warm.push(timeRun(process.execPath, [CLI, 'exec', '--', 'true'], env, p));
  const inVm = timeRun(process.execPath, [CLI, 'run', '--', 'true'], env, p);
  log(`first run -- true in this VM: ${inVm.toFixed(0)} ms`);
  const warmRun: number[] = [];
  const warmExec: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    warmExec.push(timeRun(process.execPath, [CLI, 'exec', '--', 'true'], env, p));
    warmRun.push(timeRun(process.execPath, [CLI, 'run', '--', 'true'], env, p));
  }
  timeRun(process.execPath, [CLI, 'stop'], env, p);
  const f = (x: Stat) => `${(x.median / 1000).toFixed(1)} (${(x.min / 1000).toFixed(1)}–${(x.max / 1000).toFixed(1)}) s`;
  const S = { cold: stat(cold), first: stat(first), warm: stat(warm), warmRun: stat(warmRun), warmExec: stat(warmExec) };
  const ratio = (a: Stat, b: Stat) => `${(a.median / b.median).toFixed(2)}×`;
  const rows = [
    ['cold start (`exec -- true`, new project)', f(S.cold), '—', '—', '—'],
    ['first `run -- true` in a new project (boot included)', f(S.first), `cold start: ${f(S.cold)}`, ratio(S.first, S.cold), '≤ 3×'],
    ['first `run -- true` in a VM already up', `${(inVm / 1000).toFixed(1)} s`, `cold start: ${f(S.cold)}`, `${(inVm / S.cold.median).toFixed(2)}×`, '≤ 3×'],
    ['warm run (`run -- true`)', `${S.warmRun.median.toFixed(0)} ms`, `warm exec: ${S.warmExec.median.toFixed(0)} ms`, ratio(S.warmRun, S.warmExec), '≤ 2×'],
    ['warm exec', `${S.warm.median.toFixed(0)} ms`, '—', '—', '—'],
  ];
  process.stdout.write(`${cpus().length} cores, medians (min–max) of ${BOOT_RUNS} new projects, ${RUNS} warm runs\n\n| figure | vibebox | floor | ratio | target |\n|---|---|---|---|---|\n`);
  for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
  if (explain.length) process.stdout.write(`\nwhere the first run's seconds went (guest clock, from dockerd's start):\n\n${explain.join('\n')}\n`);
}

/** dockerd's start-up (its log) and Docker's events, in seconds from dockerd's start. */
function firstRunBreakdown(env: NodeJS.ProcessEnv, proj: string): string[] {
  const script =
    'date -d "$(sed -n \'s/^time="\\([^"]*\\)".*Starting up.*/\\1/p\' /var/log/dockerd.log | head -1)" +%s.%N; ' +
    'date -d "$(sed -n \'s/^time="\\([^"]*\\)".*API listen.*/\\1/p\' /var/log/dockerd.log | head -1)" +%s.%N; ' +
    // json: an exec's command may hold newlines (the instruction files' text).
    'docker events --since 0 --until "$(date +%s)" --format "{{.TimeNano}} {{.Type}} {{.Actor.Attributes.name}} {{json .Action}}" | cut -c1-110';
  const r = spawnSync(process.execPath, [CLI, 'exec', '--user', 'root', '--', 'sh', '-c', script], { env, cwd: proj, encoding: 'utf8' });
  if (r.status !== 0) return [`(no breakdown: ${r.stderr.trim()})`];
  const [start, listen, ...events] = r.stdout.trim().split('\n');
  const t0 = Number(start);
  const at = (sec: number) => `+${(sec - t0).toFixed(1)} s`;
  return [`- dockerd started; API listening ${at(Number(listen))}`, ...events.map((e) => {
    const [ns, ...rest] = e.split(' ');
    return `- ${at(Number(ns) / 1e9)} ${rest.join(' ')}`;
  })];
}

/** 4 new projects started at once (the image is present): the time until all four have answered
 *  `exec -- true`, the PSS of each idle session, and warm exec of the first while the rest idle. */
async function fourSessions(base: string, env: NodeJS.ProcessEnv, log: (s: string) => void): Promise<{ allMs: number; pssMb: number[]; warm: Stat }> {
  const home = env['VIBEBOX_HOME']!;
  const projs = [0, 1, 2, 3].map((i) => {
    const p = join(base, `four${i}`);
    mkdirSync(p);
    return p;
  });
  const t0 = process.hrtime.bigint();
  try {
    await Promise.all(
      projs.map(
        (p) =>
          new Promise<void>((res, rej) => {
            const c = spawn(process.execPath, [CLI, 'exec', '--', 'true'], { env, cwd: p, stdio: ['ignore', 'ignore', 'pipe'] });
            let err = '';
            c.stderr.on('data', (d: Buffer) => (err += d.toString()));
            const timer = setTimeout(() => c.kill('SIGKILL'), 600_000);
            c.on('exit', (code) => {
              clearTimeout(timer);
              if (code === 0) res();
              else rej(new Error(`four sessions: ${p} failed (${code}): ${err}`));
            });
          }),
      ),
    );
    const allMs = Number(process.hrtime.bigint() - t0) / 1e6;
    log(`four sessions: all answering after ${allMs.toFixed(0)} ms`);
    await new Promise((r) => setTimeout(r, 5000));
    const pss = projs.map((p) => Math.round(pssMb(sessionPids(home, p))));
    log(`four sessions: PSS ${pss.join(', ')} MB`);
    const warm: number[] = [];
    for (let i = 0; i < RUNS; i++) warm.push(timeRun(process.execPath, [CLI, 'exec', '--', 'true'], env, projs[0]!));
    log(`four sessions: warm exec of one, three idle: median ${stat(warm).median.toFixed(0)} ms`);
    return { allMs, pssMb: pss, warm: stat(warm) };
  } finally {
    for (const p of projs) spawnSync(process.execPath, [CLI, 'stop'], { env, cwd: p });
  }
}

/**
 * Where a warm `exec -- true` spends its time: the client's marks (VIBEBOX_TIMING on its stderr)
 * and the supervisor's (in its log), both epoch milliseconds on this host.
 */
function warmExecBreakdown(env: NodeJS.ProcessEnv, proj: string, runs: number): Record<string, number> {
  const parts: Record<string, number[]> = {};
  const add = (k: string, v: number) => (parts[k] ??= []).push(v);
  const logPath = join(proj, '.vibebox', 'supervisor.log');
  for (let i = 0; i < runs; i++) {
    const before = readFileSync(logPath, 'utf8').length;
    const t0 = performance.timeOrigin + performance.now();
    const r = spawnSync(process.execPath, [CLI, 'exec', '--', 'true'], { env, cwd: proj, encoding: 'utf8' });
    const t1 = performance.timeOrigin + performance.now();
    const cm = /vibebox-timing client (\{.*\})/.exec(r.stderr);
    const sm = /timing exec \d+ (\{.*\})/.exec(readFileSync(logPath, 'utf8').slice(before));
    if (r.status !== 0 || !cm || !sm) throw new Error(`no timing marks (is the supervisor running with VIBEBOX_TIMING=1?): ${r.stderr}`);
    const c = JSON.parse(cm[1]!) as { start: number; attach: number; open: number; first: number; exit: number };
    const s = JSON.parse(sm[1]!) as { recv: number; sent: number; started: number; exit: number };
    add('spawn of the client process (bench → node start)', c.start - t0);
    add('node start + CLI load, to the connect', c.attach - c.start);
    add('ws connect (unix socket)', c.open - c.attach);
    add('client → supervisor (exec request)', s.recv - c.open);
    add('supervisor: request → sent to the agent', s.sent - s.recv);
    add('virtio-serial + spawn in the guest (sent → started)', s.started - s.sent);
    add('command runs, exit back to the supervisor', s.exit - s.started);
    add('supervisor → client (exit message)', c.exit - s.exit);
    add('client exit → process gone', t1 - c.exit);
    add('total', t1 - t0);
  }
  return Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, Number(stat(v).median.toFixed(1))]));
}

/**
 * The agent's day: `git status` and reading every file of a 20,000-file tree (200 dirs × 100
 * files), warm caches (one untimed pass first). Three places: a committed tree on /workspace, the
 * same tree in node_modules under `[workspace] local`, and a copy on the guest's own disk.
 */
function workspaceWork(base: string, env: NodeJS.ProcessEnv, log: (s: string) => void): { mount: Stat; local: Stat; floor: Stat } {
  const p = join(base, 'work');
  mkdirSync(p);
  writeFileSync(join(p, 'vibebox.toml'), '[workspace]\nlocal = ["node_modules"]\n');
  writeFileSync(join(p, '.gitignore'), 'node_modules/\n.vibebox/\nvibebox.toml\ntree.tar\n');
  for (let d = 0; d < WORK_FILES / 100; d++) {
    mkdirSync(join(p, 'tree', `d${d}`), { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(join(p, 'tree', `d${d}`, `f${f}.js`), `module.exports = ${d * 100 + f};\n`);
  }
  const git = (...a: string[]) => execFileSync('git', ['-c', 'user.email=b@example.com', '-c', 'user.name=bench', '-c', 'init.defaultBranch=main', ...a], { cwd: p, stdio: 'ignore' });
  git('init', '-q');
  git('add', '.');
  git('commit', '-q', '-m', 'tree');
  execFileSync('tar', ['-cf', 'tree.tar', '.git', '.gitignore', 'tree'], { cwd: p });
  const sh = (script: string) => {
    const r = spawnSync(process.execPath, [CLI, 'exec', '--', 'sh', '-c', script], { env, cwd: p, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`workspace work failed: ${r.stderr}`);
    return r.stdout.trim();
  };
  // node_modules (local) and the guest-local copy from the same archive: one file read over the share.
  sh('set -e; mkdir -p /workspace/node_modules/t /home/vibe/floor; tar -xf /workspace/tree.tar -C /workspace/node_modules/t; tar -xf /workspace/tree.tar -C /home/vibe/floor');
  const timed = (gitDir: string, tree: string) =>
    `set -e; cd ${gitDir}; s=$(date +%s%N); git status --porcelain > /dev/null; find ${tree} -type f -print0 | xargs -0 cat > /dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))`;
  const scripts = {
    mount: timed('/workspace', 'tree'),
    local: timed('/workspace/node_modules/t', '.'),
    floor: timed('/home/vibe/floor', 'tree'),
  };
  for (const s of Object.values(scripts)) sh(s); // warm
  const out = { mount: [] as number[], local: [] as number[], floor: [] as number[] };
  for (let i = 0; i < WORK_RUNS; i++) for (const k of ['mount', 'local', 'floor'] as const) out[k].push(Number(sh(scripts[k])));
  spawnSync(process.execPath, [CLI, 'stop'], { env, cwd: p });
  log(`workspace work median: /workspace ${stat(out.mount).median} ms, local dir ${stat(out.local).median} ms, guest-local ${stat(out.floor).median} ms`);
  return { mount: stat(out.mount), local: stat(out.local), floor: stat(out.floor) };
}

main().catch((e: Error) => {
  process.stderr.write(`bench: ${e.message}\n`);
  process.exit(1);
});
