// One bundle per runtime (docs/architecture.md, Folders): the host CLI and the guest agent.
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';

// Stale chunks from earlier builds would pile up (their names carry content hashes).
rmSync(new URL('./dist/chunks', import.meta.url), { recursive: true, force: true });

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  sourcemap: false,
  logLevel: 'warning',
  define: { VIBEBOX_VERSION: JSON.stringify(pkg.version) },
  // CommonJS dependencies inside an ESM bundle need a real require.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
};

// The client validates supervisor messages against JSON Schema generated from the zod protocol
// definition here, so the warm path need not load zod (src/supervisor/json-check.ts).
const schemaOut = new URL('./dist/.protocol-json.mjs', import.meta.url);
await build({ ...common, banner: {}, entryPoints: ['src/supervisor/protocol-json.ts'], outfile: schemaOut.pathname, target: 'node20' });
const { supervisorMessageJsonSchema } = await import(schemaOut.href);
const supervisorSchema = supervisorMessageJsonSchema();
rmSync(schemaOut);

// Host: a tiny entry that loads only what the command needs; the CLI framework and the schemas
// live in chunks that the warm exec path never loads.
await build({
  ...common,
  entryPoints: { vibebox: 'src/main.ts' },
  outdir: 'dist',
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  target: 'node20',
  external: ['node-pty', '@photostructure/sqlite', 'esbuild'],
  define: { ...common.define, SUPERVISOR_MESSAGE_SCHEMA: JSON.stringify(supervisorSchema) },
});

// Guest: Debian bookworm ships Node 18.
await build({
  ...common,
  banner: {},
  format: 'cjs',
  // Node 18 under emulation parses every byte at each boot: smaller is a faster hello.
  minify: true,
  // guest-containers: the agent container's runtime, required by the agent on first use only.
  entryPoints: { 'guest-agent': 'guest/agent/main.ts', 'guest-containers': 'guest/containers/cli.ts' },
  outdir: 'dist',
  target: 'node18',
  external: ['node-pty'],
});

// The kit: the launcher `vibebox kit build` copies into a kit's dist/server/, and the
// client SDK behind the package export `vibebox/kit` (with its .d.ts, emitted by tsc).
await build({
  ...common,
  entryPoints: { 'kit-server': 'guest/kit/main.ts' },
  outdir: 'dist',
  outExtension: { '.js': '.mjs' },
  target: 'node20',
  external: ['@photostructure/sqlite'],
});
await build({ ...common, banner: {}, entryPoints: { kit: 'guest/kit/sdk.ts' }, outdir: 'dist', target: 'node20', external: ['ws', 'zod'] });
{
  const { execFileSync } = await import('node:child_process');
  rmSync(new URL('./dist/types', import.meta.url), { recursive: true, force: true });
  const tsc = new URL('./node_modules/typescript/bin/tsc', import.meta.url).pathname;
  execFileSync(process.execPath, [tsc, '--ignoreConfig', '--declaration', '--emitDeclarationOnly', '--outDir', 'dist/types/kit', '--rootDir', 'guest/kit',
    '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--strict', '--skipLibCheck', '--types', 'node', 'guest/kit/sdk.ts'], { stdio: 'inherit' });
}
