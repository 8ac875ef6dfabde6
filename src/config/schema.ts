// vibebox.toml (ARCHITECTURE §5), strict: an unknown key is an error, not a silent no-op.
import * as z from 'zod';
import { parseSize } from './size.js';

const size = (what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const n = parseSize(v);
    if (n === null) {
      ctx.addIssue({ code: 'custom', message: `${what} must be a size like "2GiB" or "512MiB", got ${JSON.stringify(v)}` });
      return z.NEVER;
    }
    return n;
  });

const hostEntry = z
  .string()
  .min(1)
  .regex(/^\.?[A-Za-z0-9_\-.:[\]\u0080-\uffff]+$/, 'must be a host name, ".domain", or an IP address');

export const MountSchema = z.strictObject({
  host: z.string().min(1),
  guest: z.string().regex(/^\//, 'must be an absolute guest path'),
  mode: z.enum(['ro', 'rw']).default('ro'),
});

export const ConfigSchema = z.strictObject({
  vm: z
    .strictObject({
      cpus: z.number().int().min(1).max(64).default(2),
      memory: size('memory').default(2 * 1024 ** 3),
      disk: size('disk').default(20 * 1024 ** 3),
      image: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be an image name like "default"').default('default'),
    })
    .prefault({}),
  session: z
    .strictObject({
      auto_shutdown_ms: z.number().int().min(0).default(30000),
    })
    .prefault({}),
  mounts: z.array(MountSchema).default([]),
  network: z
    .strictObject({
      mode: z.enum(['allowlist', 'blocklist']).default('allowlist'),
      entries: z.array(hostEntry).optional(),
    })
    .prefault({}),
  workspace: z
    .strictObject({
      // true lets the guest write .git/config and .git/hooks (host code execution on the next
      // host `git status`): a widening, subject to approval.
      writable_git_config: z.boolean().default(false),
    })
    .optional(),
});

export type RawConfig = z.input<typeof ConfigSchema>;
export type Config = z.output<typeof ConfigSchema>;
export type MountConfig = z.output<typeof MountSchema>;
