// The guest agent's PTY module, taken for the guest and never from the host's install: the
// registry's prebuilt node-pty for Linux on the VM's CPU (@lydell/node-pty, the same API), pinned
// by version and sha512, fetched by the host's npm (`npm pack`: no script runs) at image build.
// Its addon is built against Node-API, so it loads in any guest Node of that API's major (18 and
// later), whatever Node the host runs. Staged as the `node-pty` package the agent requires:
//   node-pty/index.js  → node-pty/node_modules/@lydell/node-pty (+ -linux-<arch>/pty.node)
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { VibeboxError } from '../guest/errors.js';

export const GUEST_PTY_VERSION = '1.1.0';

/** The registry's sha512 of each tarball (npm view <pkg>@<version> dist.integrity). */
const INTEGRITY: Readonly<Record<string, string>> = {
  '@lydell/node-pty': 'sha512-VDD8LtlMTOrPKWMXUAcB9+LTktzuunqrMwkYR1DMRBkS6LQrCt+0/Ws1o2rMml/n3guePpS7cxhHF7Nm5K4iMw==',
  '@lydell/node-pty-linux-x64': 'sha512-NcNqRTD14QT+vXcEuqSSvmWY+0+WUBn2uRE8EN0zKtDpIEr9d+YiFj16Uqds6QfcLCHfZmC+Ls7YzwTaqDnanA==',
  '@lydell/node-pty-linux-arm64': 'sha512-yyDBmalCfHpLiQMT2zyLcqL2Fay4Xy7rIs8GH4dqKLnEviMvPGOK7LADVkKAsbsyXBSISL3Lt1m1MtxhPH6ckg==',
};

/** The packages for a guest CPU (node's `process.arch` names), each with its pinned integrity. */
export function guestPtyPackages(arch: string): { pkg: string; integrity: string }[] {
  const native = `@lydell/node-pty-linux-${arch}`;
  const a = INTEGRITY['@lydell/node-pty'];
  const b = INTEGRITY[native];
  if (!a || !b) throw new VibeboxError('E_IMAGE_BUILD', `no prebuilt PTY module for a ${arch} guest`, 'vibebox images are built for x64 and arm64');
  return [
    { pkg: '@lydell/node-pty', integrity: a },
    { pkg: native, integrity: b },
  ];
}

/** What the image digest hashes for the PTY module: its identity, known without the network. */
export function guestPtyIdentity(arch: string): string {
  return JSON.stringify({ version: GUEST_PTY_VERSION, packages: guestPtyPackages(arch) });
}

export function integrityOf(data: Buffer): string {
  return `sha512-${createHash('sha512').update(data).digest('base64')}`;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args[0] ?? ''} failed: ${String(stderr).trim().split('\n').slice(-3).join(' | ') || err.message}`));
      else resolve(String(stdout));
    });
  });
}

function npmBin(): string {
  const beside = join(dirname(process.execPath), 'npm');
  return existsSync(beside) ? beside : 'npm';
}

/** The tarball of `pkg`, from `cacheDir` or the registry, checked against its pinned sha512. */
async function tarball(pkg: string, integrity: string, cacheDir: string): Promise<string> {
  const file = join(cacheDir, `${pkg.replace('@', '').replace('/', '-')}-${GUEST_PTY_VERSION}.tgz`);
  if (existsSync(file) && integrityOf(await readFile(file)) === integrity) return file;
  await mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const tmp = await mkdtemp(join(cacheDir, 'fetch-'));
  try {
    const out = await run(npmBin(), ['pack', `${pkg}@${GUEST_PTY_VERSION}`, '--json', '--pack-destination', tmp, '--loglevel=error'], tmp, 300_000);
    const name = (JSON.parse(out) as { filename?: unknown }[])[0]?.filename;
    if (typeof name !== 'string' || name.includes('/')) throw new Error(`npm pack ${pkg} named no file`);
    const got = integrityOf(await readFile(join(tmp, name)));
    if (got !== integrity) throw new Error(`${pkg}@${GUEST_PTY_VERSION} from the registry has ${got}, pinned ${integrity}`);
    await rename(join(tmp, name), file);
    return file;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** Stage the `node-pty` package for a guest of `arch` into `dst` (made here). */
export async function stageGuestPty(dst: string, arch: string, cacheDir: string): Promise<void> {
  try {
    const base = join(dst, 'node_modules');
    for (const { pkg, integrity } of guestPtyPackages(arch)) {
      const tgz = await tarball(pkg, integrity, cacheDir);
      const to = join(base, pkg);
      await mkdir(to, { recursive: true });
      // npm's tarballs hold one folder, package/: its contents go to the package's place.
      await run('tar', ['-xzf', tgz, '-C', to, '--strip-components=1', '--no-same-owner', '--no-same-permissions'], to, 60_000);
    }
    await writeFile(join(dst, 'package.json'), JSON.stringify({ name: 'node-pty', version: GUEST_PTY_VERSION, private: true, main: 'index.js' }) + '\n');
    await writeFile(join(dst, 'index.js'), "'use strict';\nmodule.exports = require('@lydell/node-pty');\n");
  } catch (e) {
    if (e instanceof VibeboxError) throw e;
    throw new VibeboxError('E_IMAGE_BUILD', `the guest's PTY module could not be fetched: ${(e as Error).message}`, 'the image build needs the npm registry (npm config: registry, cafile, proxy)');
  }
}
