// Launcher for the kit server, configured by environment and a kit.json manifest, as a container
// entry point would run it. Prints one line with the listening URL (never the key) and stops on
// SIGTERM/SIGINT.
import { readFileSync } from 'node:fs';
import * as z from 'zod';
import { keyFingerprint } from './auth.js';
import { KitError } from './errors.js';
import { kitPackages } from './families.js';
import { KitManifestFile } from './main-schema.js';
import { loadRunnable } from './runnable.js';
import { startKitServer } from './server.js';

const Env = z.object({
  VIBEBOX_KIT_KEY: z.string().min(16, 'VIBEBOX_KIT_KEY must be set (at least 16 characters)'),
  VIBEBOX_KIT_MANIFEST: z.string().min(1, 'VIBEBOX_KIT_MANIFEST must name the kit.json file'),
  VIBEBOX_KIT_RUNNABLE: z.string().min(1, 'VIBEBOX_KIT_RUNNABLE must name the runnable module'),
  VIBEBOX_KIT_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  VIBEBOX_KIT_HOST: z.string().default('0.0.0.0'),
  VIBEBOX_KIT_STATE: z.string().default('/var/lib/vibebox-kit'),
  VIBEBOX_KIT_INPUT: z.string().default('/input'),
  VIBEBOX_KIT_OUTPUT: z.string().default('/output'),
  VIBEBOX_KIT_WORK: z.string().default('/work'),
  VIBEBOX_KIT_PUBLIC_URL: z.string().optional(),
});

/**
 * VIBEBOX_KIT_SECRETS: a JSON file of env entries (the key, the manifest's secrets) that `vibebox
 * kit serve` writes 0600 on the VM's tmpfs, so they stay out of the container's stored config.
 */
function loadSecrets(): void {
  const file = process.env['VIBEBOX_KIT_SECRETS'];
  if (!file) return;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new KitError('E_CONFIG_INVALID', `cannot read ${file}: ${(err as Error).message}`);
  }
  const r = z.record(z.string(), z.string()).safeParse(parsed);
  if (!r.success) throw new KitError('E_CONFIG_INVALID', `${file}: must be a JSON object of strings`);
  for (const [k, v] of Object.entries(r.data)) process.env[k] ??= v;
}

async function main(): Promise<void> {
  loadSecrets();
  const env = Env.safeParse(process.env);
  if (!env.success) throw new KitError('E_CONFIG_INVALID', env.error.issues.map((i) => i.message).join('; '));
  const e = env.data;
  let manifestJson: unknown;
  try {
    manifestJson = JSON.parse(readFileSync(e.VIBEBOX_KIT_MANIFEST, 'utf8'));
  } catch (err) {
    throw new KitError('E_CONFIG_INVALID', `cannot read ${e.VIBEBOX_KIT_MANIFEST}: ${(err as Error).message}`);
  }
  const m = KitManifestFile.safeParse(manifestJson);
  if (!m.success) {
    const i = m.error.issues[0];
    throw new KitError('E_CONFIG_INVALID', `${e.VIBEBOX_KIT_MANIFEST}: ${i ? `${i.path.join('.')}: ${i.message}` : 'invalid'}`);
  }
  const manifest = m.data;
  if (manifest.key_fingerprint && manifest.key_fingerprint !== keyFingerprint(e.VIBEBOX_KIT_KEY))
    throw new KitError('E_KEY_INVALID', 'VIBEBOX_KIT_KEY does not match key_fingerprint in the manifest');
  const kit = await startKitServer({
    runnable: await loadRunnable(e.VIBEBOX_KIT_RUNNABLE),
    key: e.VIBEBOX_KIT_KEY,
    // What the image holds: the base family's packages and the kit's own (the environment skill lists them).
    manifest: { name: manifest.name, version: manifest.version, ...(manifest.base ? { base: manifest.base } : {}), packages: kitPackages(manifest.base, { apt: manifest.packages?.['apt'] ?? [], npm: manifest.packages?.['npm'] ?? [] }) },
    fs: { input: e.VIBEBOX_KIT_INPUT, output: e.VIBEBOX_KIT_OUTPUT, work: e.VIBEBOX_KIT_WORK },
    stateDir: e.VIBEBOX_KIT_STATE,
    host: e.VIBEBOX_KIT_HOST,
    port: e.VIBEBOX_KIT_PORT,
    ...(e.VIBEBOX_KIT_PUBLIC_URL ? { publicBaseUrl: e.VIBEBOX_KIT_PUBLIC_URL } : {}),
    ...(manifest.storage ? { storage: manifest.storage } : {}),
    ...(manifest.limits ? { limits: manifest.limits } : {}),
  });
  process.stdout.write(`kit ${manifest.name} ${manifest.version} listening on ${kit.httpUrl}\n`);
  const stop = (): void => {
    kit.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  const code = err instanceof KitError ? err.code : 'E_KIT';
  process.stderr.write(`vibebox-kit: ${code}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(2);
});
