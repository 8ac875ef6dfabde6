// Stand-in (agent-runtime slice) with the agreed signature; the agent-image slice owns this file
// and its real implementation (an mmdebstrap rootfs imported with docker import) replaces it.
import { inspectImage } from './engine.js';
import { VibeboxError } from '../errors.js';

export const BASE_IMAGE = 'vibebox/agent:base';

export async function ensureBaseImage(log: (line: string) => void): Promise<void> {
  if (await inspectImage(BASE_IMAGE)) return;
  log(`vibebox: ${BASE_IMAGE} is missing`);
  throw new VibeboxError('E_IMAGE_MISSING', `${BASE_IMAGE} is not in the VM`, 'rebuild the guest image');
}
