// kit.json, the manifest the launcher (main.ts) reads and `vibebox kit build` writes. Apart from
// main.ts so the build can import it without starting a server.
import * as z from 'zod';
import { StoragePolicy } from './kit-protocol.js';

export const KitEnvSpec = z
  .object({ required: z.boolean().optional(), secret: z.boolean().optional(), default: z.string().optional(), description: z.string().max(500).optional() })
  .strict();

export const KitManifestFile = z
  .object({
    name: z.string().min(1),
    version: z.string().min(1),
    base: z.string().optional(),
    packages: z.record(z.string(), z.array(z.string())).optional(),
    /** Environment the runnable reads (`vibebox kit build` writes .env.example from it). */
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), KitEnvSpec).optional(),
    protocol_version: z.number().int().optional(),
    fs: z.record(z.string(), z.object({ path: z.string(), writable: z.boolean() }).strict()).optional(),
    /** The port the launcher listens on in its container. */
    port: z.number().int().min(1).max(65535).optional(),
    /** sha256:<hex> of the key; when present the kit refuses to boot with any other key. */
    key_fingerprint: z.string().regex(/^sha256:[0-9a-f]{64}$/).optional(),
    storage: z.object({ inputs: StoragePolicy.optional(), outputs: StoragePolicy.optional() }).strict().optional(),
    limits: z
      .object({
        maxInputBytes: z.number().int().positive(),
        maxTotalInputBytes: z.number().int().positive(),
        maxInputFiles: z.number().int().positive(),
        maxOutputFiles: z.number().int().positive(),
        maxFrameBytes: z.number().int().positive(),
        promptTimeoutMs: z.number().int().nonnegative(),
      })
      .partial()
      .strict()
      .optional(),
  })
  .strict();

