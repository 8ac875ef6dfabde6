// vibebox.toml (README.md, Configuration), strict: an unknown key is an error, not a silent no-op.
import * as z from 'zod';
import { CONTAINER_MEMORY, parseAutoShutdown, parseSize, sizeProblem, VM_DISK, VM_MEMORY, type SizeBounds } from './size.js';
import { localDirProblem } from '../../guest/local-dirs.js';
import { ImageLayerSpec } from '../../guest/protocol.js';
import { hasUnsafeText, shown } from '../../guest/shown.js';
import { validateEntry } from '../../proxy/policy.js';

// Text that can rewrite the terminal (ESC, CR, newline, any C0/C1 control, DEL) or reorder and
// hide what it shows (bidi overrides, zero-width characters) has no business in vibebox.toml,
// whose strings end up in the approval prompt: refused in every string and key, before the schema
// looks at anything (docs/architecture.md, "Hostile text").
function unsafeCharProblem(s: string): string | null {
  for (const c of s) {
    if (!hasUnsafeText(c)) continue;
    const kind = c.charCodeAt(0) <= 0x9f ? 'a control character' : 'an invisible or reordering character';
    return `contains ${kind} (${shown(c)})`;
  }
  return null;
}

const keyPath = (path: readonly (string | number)[]) => path.map((p) => (typeof p === 'number' ? `[${p}]` : shown(p))).join('.').replace(/\.\[/g, '[');

/**
 * The first key or string of a parsed vibebox.toml holding a control or reordering character, as
 * one line: `image.run[1] contains a control character (\e): "…"`; null when there is none.
 */
export function unsafeTextIssue(raw: unknown, path: (string | number)[] = []): string | null {
  if (typeof raw === 'string') {
    const p = unsafeCharProblem(raw);
    if (!p) return null;
    const v = shown(raw);
    return `${keyPath(path) || '(top level)'} ${p}: "${v.length > 80 ? `${v.slice(0, 80)}…` : v}"`;
  }
  if (Array.isArray(raw)) {
    for (const [i, x] of raw.entries()) {
      const r = unsafeTextIssue(x, [...path, i]);
      if (r) return r;
    }
    return null;
  }
  if (raw !== null && typeof raw === 'object' && !(raw instanceof Date)) {
    for (const [k, x] of Object.entries(raw)) {
      const kp = unsafeCharProblem(k);
      if (kp) return `${keyPath([...path, k])}: the key ${kp}`;
      const r = unsafeTextIssue(x, [...path, k]);
      if (r) return r;
    }
  }
  return null;
}

const size = (what: string, bounds: SizeBounds) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const n = parseSize(v);
    if (n === null) {
      ctx.addIssue({ code: 'custom', message: `${what} must be a size like "2GiB" or "512MiB", got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    const bad = sizeProblem(n, bounds);
    if (bad) {
      ctx.addIssue({ code: 'custom', message: `${bad}, got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });

// One [network] entry (parsed and explained by proxy/policy.ts parseEntry):
//   host            exactly this host, EVERY port
//   .domain         the domain and all its subdomains, every port
//   host:443        only that port (any form above takes a port: .domain:443, [v6]:443)
//   203.0.113.7     exactly this IP address (IPv4-mapped IPv6 spellings are the same address)
// The defaults name their port (443; 80 too for Debian's archive): a bare host opens every port.
// Validated by the very function `vibebox allow` uses: an entry the proxy would skip as malformed
// (matching nothing, silently) is an error here instead.
const hostEntry = z.string().superRefine((v, ctx) => {
  const bad = validateEntry(v);
  if (bad) ctx.addIssue({ code: 'custom', message: bad });
});

export const MountSchema = z.strictObject({
  host: z.string().min(1),
  guest: z.string().regex(/^\//, 'must be an absolute guest path'),
  mode: z.enum(['ro', 'rw']).default('ro'),
});

// [[ports]]: host 127.0.0.1:<host> → guest <guest> (a server in the VM or in its containers).
// `host` defaults to `guest`. A forward is a widening (approval): it opens a way in.
const port = z.number().int().min(1).max(65535);
export const PortSchema = z
  .strictObject({ guest: port, host: port.optional() })
  .transform((p) => ({ guest: p.guest, host: p.host ?? p.guest }));
export type PortConfig = z.output<typeof PortSchema>;

export const ConfigSchema = z.strictObject({
  vm: z
    .strictObject({
      cpus: z.number().int().min(1).max(64).default(2),
      memory: size('memory', VM_MEMORY).default(2 * 1024 ** 3),
      disk: size('disk', VM_DISK).default(20 * 1024 ** 3),
      image: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be an image name like "default"').default('default'),
    })
    .prefault({}),
  session: z
    .strictObject({
      // "never" is Infinity: the supervisor arms no timer (a timer past 2^31-1 ms would fire at once).
      auto_shutdown_ms: z
        .union([z.number(), z.string()], { error: 'expected a whole number of milliseconds or "never"' })
        .transform((v, ctx) => {
          const n = parseAutoShutdown(v);
          if (typeof n === 'string') {
            ctx.addIssue({ code: 'custom', message: n });
            return z.NEVER;
          }
          return n;
        })
        .default(30000),
    })
    .prefault({}),
  mounts: z.array(MountSchema).default([]),
  ports: z
    .array(PortSchema)
    .default([])
    .superRefine((ps, ctx) => {
      const seen = new Set<number>();
      for (const [i, p] of ps.entries()) {
        if (seen.has(p.host)) ctx.addIssue({ code: 'custom', path: [i, 'host'], message: `host port ${p.host} is forwarded twice` });
        seen.add(p.host);
      }
    }),
  network: z
    .strictObject({
      mode: z.enum(['allowlist', 'blocklist']).default('allowlist'),
      entries: z.array(hostEntry).optional(),
    })
    .prefault({}),
  workspace: z
    .strictObject({
      // true lets the guest write git config, hooks and .git pointers (submodules' too) (host code execution on the next
      // host `git status`): a widening, subject to approval.
      writable_git_config: z.boolean().default(false),
      // Directories under /workspace kept on the VM disk (per session), shadowing the host's: a
      // narrowing (the host sees less), so no approval. Dependency installs run at disk speed.
      local: z
        .array(
          z.string().superRefine((v, ctx) => {
            const p = localDirProblem(v);
            if (p) ctx.addIssue({ code: 'custom', message: p });
          }),
        )
        .optional(),
    })
    .optional(),
  // The project layer of the agent container: built FROM vibebox/agent:base through the
  // egress proxy. `run` lines run as root at build time: new ones are a widening (approval).
  image: ImageLayerSpec.prefault({}),
  // Caps of the agent container inside the VM (the VM's own [vm] caps bound it anyway).
  container: z
    .strictObject({
      cpus: z.number().positive().max(64).optional(),
      memory: size('container.memory', CONTAINER_MEMORY).optional(),
    })
    .prefault({}),
});

export type RawConfig = z.input<typeof ConfigSchema>;
export type Config = z.output<typeof ConfigSchema>;
export type MountConfig = z.output<typeof MountSchema>;
