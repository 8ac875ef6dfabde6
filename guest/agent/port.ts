// Find the agent's virtio-serial port by name: /sys/class/virtio-ports/vportNpM/name.
// (/dev/virtio-ports/<name> links need udev, which the guest does not run.)
import { existsSync, readdirSync, readFileSync } from 'node:fs';

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
export async function waitForPort(name: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 5; ; delay = Math.min(delay * 2, 100)) {
    const p = findPort(name);
    if (p) return p;
    if (Date.now() > deadline) throw new Error(`virtio port ${name} not found`);
    await new Promise((r) => setTimeout(r, delay));
  }
}
