// The image digest: sha256 over the recipe (as canonical JSON) and every input file, by logical
// name. Pure: the caller reads the files. A changed recipe or guest bundle gives a new digest.
import { createHash } from 'node:crypto';

export const DIGEST_LENGTH = 16;

export interface DigestInput {
  /** Logical name, stable across machines (e.g. "images/guest-init.sh", "guest-agent.js"). */
  name: string;
  data: Uint8Array;
}

/** JSON with object keys sorted, so the same recipe always hashes the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

export function computeDigest(recipe: unknown, files: readonly DigestInput[]): string {
  const h = createHash('sha256');
  h.update('vibebox-image\0');
  h.update(canonicalJson(recipe));
  h.update('\0');
  const sorted = [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const f of sorted) {
    const fileHash = createHash('sha256').update(f.data).digest('hex');
    h.update(`${f.name}\0${f.data.length}\0${fileHash}\n`);
  }
  return h.digest('hex').slice(0, DIGEST_LENGTH);
}

export function isDigest(s: string): boolean {
  return new RegExp(`^[0-9a-f]{${DIGEST_LENGTH}}$`).test(s);
}
