// `vibebox kit build`, the pure part: what a kit module declares (its `kit` export), and the
// manifest, .env.example and Dockerfile made from it. No I/O here.
import * as z from 'zod';
import TOML from '@iarna/toml';
import { FAMILIES, familyOf, kitPackages } from '../../guest/kit/families.js';
import { keyFingerprint } from '../../guest/kit/auth.js';
import { KitEnvSpec, KitManifestFile } from '../../guest/kit/main-schema.js';
import { KIT_PROTOCOL_VERSION, StoragePolicy } from '../../guest/kit/kit-protocol.js';
import { validateOutputsPolicy, validateInputsPolicy, type AdapterInfo } from '../../guest/kit/storage/policy.js';
import { VibeboxError } from '../errors.js';
import { KIT_PORT } from '../../guest/containers/agent-create-body.js';
import { shown } from '../../guest/shown.js';

export const KIT_BASE = 'vibebox/agent:base';

/** The optional `export const kit = {…}` of a kit module (every field optional, as glovebox's wrap config). */
export const KitDeclaration = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'must be lower-case letters, digits, ".", "_" or "-"').optional(),
    version: z.string().min(1).max(64).optional(),
    /** A base family (media, docs, python, browser; `vibebox/docs` too) or the agent base itself. */
    base: z
      .string()
      .refine((b) => b === KIT_BASE || familyOf(b) !== undefined, `must be one of ${Object.keys(FAMILIES).join(', ')} (a base family) or ${KIT_BASE}`)
      .optional(),
    packages: z.object({ apt: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]*$/)).optional(), npm: z.array(z.string().regex(/^(@[a-z0-9._-]+\/)?[a-z0-9._-]+(@[A-Za-z0-9.^~<>=*|+-]+)?$/)).optional() }).strict().optional(),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), KitEnvSpec).optional(),
    storage: z.object({ inputs: StoragePolicy.optional(), outputs: StoragePolicy.optional() }).strict().optional(),
    limits: KitManifestFile.shape.limits,
  })
  .strict();
export type KitDeclaration = z.infer<typeof KitDeclaration>;

export const KIT_FS = {
  input: { path: '/input', writable: false },
  output: { path: '/output', writable: true },
  work: { path: '/work', writable: true },
};

/** The manifest (kit.json): checked against the launcher's own schema before it is written. */
export function kitManifest(decl: KitDeclaration, o: { name: string; version: string; key: string }): z.infer<typeof KitManifestFile> {
  // The adapters the launcher registers (s3 needs hooks only a host program can give).
  const registry: Record<string, AdapterInfo> = { inline: { writable: true }, url: { writable: false }, localServer: { writable: true } };
  try {
    // Fail the build, not the boot, on a policy with no home for some file size.
    if (decl.storage?.outputs) validateOutputsPolicy(decl.storage.outputs, registry);
    if (decl.storage?.inputs) validateInputsPolicy(decl.storage.inputs, registry);
  } catch (e) {
    throw new VibeboxError('E_KIT', `kit storage policy: ${(e as Error).message}`, 'every outputs policy needs a terminal rule and no url rule');
  }
  const packages: Record<string, string[]> = {};
  if (decl.packages?.apt?.length) packages['apt'] = decl.packages.apt;
  if (decl.packages?.npm?.length) packages['npm'] = decl.packages.npm;
  return KitManifestFile.parse({
    name: o.name,
    version: o.version,
    base: decl.base ?? KIT_BASE,
    packages,
    env: decl.env ?? {},
    key_fingerprint: keyFingerprint(o.key),
    protocol_version: KIT_PROTOCOL_VERSION,
    fs: KIT_FS,
    port: KIT_PORT,
    ...(decl.storage ? { storage: decl.storage } : {}),
    ...(decl.limits ? { limits: decl.limits } : {}),
  });
}

/**
 * .env.example: one line per declared variable, required first-class, secrets never given a value.
 * The build refuses control characters in the declaration; escaping here too means no value can
 * ever add a line of its own.
 */
export function envExample(env: Record<string, z.infer<typeof KitEnvSpec>>): string {
  const lines = ['# Environment of this kit. VIBEBOX_KIT_KEY is the bearer key (kit.key); `vibebox kit serve`', '# passes it, and these variables from ~/.vibebox/.env, to the kit.', 'VIBEBOX_KIT_KEY='];
  for (const [name, s] of Object.entries(env).sort(([a], [b]) => a.localeCompare(b))) {
    const notes = [s.required ? 'required' : 'optional', ...(s.secret ? ['secret'] : []), ...(s.description ? [shown(s.description)] : [])];
    lines.push(`# ${notes.join(', ')}`, `${shown(name)}=${s.secret ? '' : shown(s.default ?? '')}`);
  }
  return lines.join('\n') + '\n';
}

/** The packages the kit's image holds: its family's and its own, as kit serve installs them. */
function imagePackages(m: z.infer<typeof KitManifestFile>): { apt: string[]; npm: string[] } {
  return kitPackages(m.base, { apt: m.packages?.['apt'] ?? [], npm: m.packages?.['npm'] ?? [] });
}

const RUNTIME_ENV = {
  VIBEBOX_KIT_MANIFEST: '/opt/kit/kit.json',
  VIBEBOX_KIT_RUNNABLE: '/opt/kit/server/runnable.mjs',
  VIBEBOX_KIT_PORT: String(KIT_PORT),
  VIBEBOX_KIT_STATE: '/var/lib/vibebox-kit',
};

/**
 * A Dockerfile to run the same dist/ anywhere with Docker: FROM the agent base, the family's and
 * the declared packages (one layer each, as kit serve builds them), the launcher.
 */
export function dockerfile(m: z.infer<typeof KitManifestFile>): string {
  const { apt, npm } = imagePackages(m);
  const family = familyOf(m.base);
  return [
    `# Built by vibebox kit build for ${m.name} ${m.version}. Run with: docker build -t ${m.name} . &&`,
    `#   docker run -p 127.0.0.1:${KIT_PORT}:${KIT_PORT} -e VIBEBOX_KIT_KEY="$(cat kit.key)" ${m.name}`,
    ...(family ? [`# Base family ${family}: ${FAMILIES[family].about}.`] : []),
    `FROM ${KIT_BASE}`,
    'USER root',
    ...(apt.length ? [`RUN apt-get update && apt-get install -y --no-install-recommends ${apt.join(' ')} && rm -rf /var/lib/apt/lists/*`] : []),
    ...(npm.length ? [`RUN npm install -g ${npm.join(' ')}`] : []),
    'COPY kit.json /opt/kit/kit.json',
    'COPY server /opt/kit/server',
    'RUN mkdir -p /input /output /work /var/lib/vibebox-kit && chown 10001:10001 /input /output /work /var/lib/vibebox-kit',
    'USER 10001:10001',
    'WORKDIR /work',
    `ENV ${Object.entries(RUNTIME_ENV).map(([k, v]) => `${k}=${v}`).join(' ')} HOME=/work`,
    `EXPOSE ${KIT_PORT}`,
    'CMD ["node", "/opt/kit/server/index.mjs"]',
    '',
  ].join('\n');
}

/**
 * nixpacks.toml: the Dockerfile's recipe for buildpack hosts (Railway, Fly, …). Node 20 as in the
 * agent base (server/ carries the SQLite binding's Linux prebuilds, Node-API); the same apt and npm packages.
 * The app is deployed at /app; VIBEBOX_KIT_KEY comes from the host's secrets, never from a file.
 */
export function nixpacks(m: z.infer<typeof KitManifestFile>): string {
  const { apt, npm } = imagePackages(m);
  const doc = {
    phases: {
      setup: { nixPkgs: ['nodejs_20'], ...(apt.length ? { aptPkgs: apt } : {}) },
      install: { cmds: npm.length ? [`npm install -g --no-fund --no-audit ${npm.join(' ')}`] : [] },
      build: { cmds: ['mkdir -p /input /output /work /var/lib/vibebox-kit'] },
    },
    start: { cmd: 'node /app/server/index.mjs' },
    variables: {
      ...RUNTIME_ENV,
      VIBEBOX_KIT_MANIFEST: '/app/kit.json',
      VIBEBOX_KIT_RUNNABLE: '/app/server/runnable.mjs',
      VIBEBOX_KIT_INPUT: '/input',
      VIBEBOX_KIT_OUTPUT: '/output',
      VIBEBOX_KIT_WORK: '/work',
    },
  };
  return `# Built by vibebox kit build for ${m.name} ${m.version}: the Dockerfile's recipe for nixpacks hosts.\n# Set VIBEBOX_KIT_KEY (dist/kit.key) and the kit's secrets in the host's environment.\n${TOML.stringify(doc as unknown as TOML.JsonMap)}`;
}
