// Bearer check for every authenticated route and the WebSocket upgrade. Both sides are hashed
// first so timingSafeEqual always compares equal-length digests and the key's length leaks nothing.
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

export function verifyBearer(header: string | string[] | undefined, key: string): boolean {
  if (typeof header !== 'string') return false;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  const presented = m?.[1] ?? '';
  // Compare even when the header is malformed so the failure path costs the same.
  const same = timingSafeEqual(digest(presented), digest(key));
  return m !== null && same;
}

/** sha256 fingerprint of the key, as a manifest may record it. */
export function keyFingerprint(key: string): string {
  return `sha256:${digest(key).toString('hex')}`;
}
