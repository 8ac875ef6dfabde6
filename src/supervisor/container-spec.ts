// The agent container's spec from the applied (approved) config: what the guest builds and caps.
import type { ContainerSpec } from '../../guest/protocol.js';
import type { ResolvedConfig } from '../config/load.js';

export function containerSpec(cfg: Pick<ResolvedConfig, 'image' | 'container'>): ContainerSpec {
  return {
    image: { apt: [...cfg.image.apt], npm: [...cfg.image.npm], run: [...cfg.image.run] },
    ...(cfg.container.cpus !== undefined ? { cpus: cfg.container.cpus } : {}),
    ...(cfg.container.memory !== undefined ? { memoryBytes: cfg.container.memory } : {}),
  };
}
