// image.json: what a built image is and how to boot it. Written last by the builder (inside the
// temp dir, before the rename), validated with zod whenever it is read.
import * as z from 'zod';

export const IMAGE_MANIFEST_SCHEMA_VERSION = 1;

const rfc3339Utc = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/, 'must be an RFC 3339 UTC timestamp');

export const ImageManifestSchema = z
  .object({
    schema: z.literal(IMAGE_MANIFEST_SCHEMA_VERSION),
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/),
    digest: z.string().regex(/^[0-9a-f]{16}$/),
    created: rfc3339Utc,
    suite: z.string().min(1),
    arch: z.literal('amd64'),
    kernelVersion: z.string().min(1),
    packages: z.array(z.string().min(1)).min(1),
    user: z.object({
      name: z.string().min(1),
      uid: z.number().int().nonnegative(),
      gid: z.number().int().nonnegative(),
      home: z.string().startsWith('/'),
    }),
    hostname: z.string().min(1),
    /** Recommended kernel command line for direct kernel boot. */
    cmdline: z.string().min(1),
    /** Name of the virtio-serial port the guest agent listens on. */
    agentPort: z.string().min(1),
    /** Sparse size of the root disk, bytes. */
    diskSizeBytes: z.number().int().positive(),
    files: z.object({
      kernel: z.string().min(1),
      initrd: z.string().min(1),
      rootfs: z.string().min(1),
    }),
    /** Seconds the build took. */
    buildSeconds: z.number().nonnegative(),
  })
  .strict();

export type ImageManifest = z.infer<typeof ImageManifestSchema>;

export function parseManifest(value: unknown): ImageManifest {
  return ImageManifestSchema.parse(value);
}

/** The kernel command line for booting an image, plus extra arguments (appended, so they win). */
export function kernelCmdline(manifest: Pick<ImageManifest, 'cmdline'>, extra: readonly string[] = []): string {
  return [manifest.cmdline, ...extra.filter((a) => a.length > 0)].join(' ');
}
