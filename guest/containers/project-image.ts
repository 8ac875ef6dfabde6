// Stand-in (agent-runtime slice) with the agreed signatures; the agent-image slice owns this file
// and its real implementation (the [image] layer built FROM base) replaces it.
import { createHash } from 'node:crypto';
import type { ImageLayerSpec } from '../protocol.js';
import { BASE_IMAGE, ensureBaseImage } from './base-image.js';
import { inspectImage } from './engine.js';
import { VibeboxError } from '../errors.js';

export function projectImageTag(l: ImageLayerSpec): string {
  if (l.apt.length === 0 && l.npm.length === 0 && l.run.length === 0) return BASE_IMAGE;
  return `vibebox/project:${createHash('sha256').update(JSON.stringify(l)).digest('hex').slice(0, 16)}`;
}

export async function ensureProjectImage(spec: ImageLayerSpec, log: (line: string) => void): Promise<string> {
  await ensureBaseImage(log);
  const tag = projectImageTag(spec);
  if (await inspectImage(tag)) return tag;
  throw new VibeboxError('E_IMAGE_BUILD', `project image ${tag} is not built`, 'the agent-image slice builds it');
}
