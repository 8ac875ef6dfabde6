// Find the agent's virtio-serial port by name: /sys/class/virtio-ports/vportNpM/name.
// (/dev/virtio-ports/<name> links need udev, which the guest does not run.)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { pollUntil } from '../poll.js';

export function findPort(name: string): string | null {
  const base = '/sys/class/virtio-ports';
  if (!existsSync(base)) return null;
  for (const dev of readdirSync(base)) {
    try {
      if (readFileSync(`${base}/${dev}/name`, 'utf8').trim() === name) return `/dev/${dev}`;
    } catch {
      /* port without a name */
    }
  }
  return null;
}

/** The port appears once virtio_console is loaded; init loads it before starting us. */
export function waitForPort(name: string, timeoutMs: number): Promise<string> {
  return pollUntil(() => findPort(name), { deadline: Date.now() + timeoutMs, intervalMs: 5, maxIntervalMs: 100, what: `virtio port ${name} appearing` });
}
