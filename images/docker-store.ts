// vibebox/agent:base written straight into the guest's Docker store (/var/lib/docker, overlay2
// graph driver) at image build, so a new project's first container starts from disk instead of
// a `docker import` under emulation (docs/architecture.md, The guest image). What dockerd reads
// when it loads the store (moby layer/filestore.go, image/fs.go, reference store):
//   image/overlay2/layerdb/sha256/<chain id>/{diff,size,cache-id}   the layer (no parent: one layer)
//   image/overlay2/imagedb/content/sha256/<image id>               the config; its sha256 is its id
//   image/overlay2/repositories.json                               the tag
//   overlay2/<cache id>/{diff/,link}, overlay2/l/<link> -> ../<cache id>/diff
// The layer's diff id is the sha256 of the uncompressed tarball, as `docker import` computes it.
// No tar-split.json.gz: only `docker save`/`push` of the base itself need it (never done here).
// Pure: the builder writes these entries; the customize hook unpacks the tarball into diff/
// and writes size (it needs the unpacked tree).
import { createHash } from 'node:crypto';
import { BASE_IMAGE, baseConfig } from '../guest/docker/base-config.js';

export interface StoreEntry {
  /** Relative to /var/lib/docker. */
  path: string;
  kind: 'dir' | 'file' | 'symlink';
  mode: number;
  /** File contents, or a symlink's target. */
  data?: string;
}

export interface StoreLayout {
  imageId: string;
  chainId: string;
  cacheId: string;
  entries: StoreEntry[];
  /** Where the tarball is unpacked (relative to /var/lib/docker). */
  diffDir: string;
  /** Where the hook writes the unpacked size in bytes (no newline: dockerd parses it as is). */
  sizeFile: string;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** overlay2's short link name: 26 characters of base32 (the driver's own length and alphabet). */
export function linkName(seed: string): string {
  const h = createHash('sha256').update(`vibebox-overlay2-link\0${seed}`).digest();
  return [...h.subarray(0, 26)].map((b) => BASE32[b % 32]).join('');
}

/** The image config bytes and its id (pure; `created` fixes the timestamp). */
export function imageConfig(diffId: string, created: string): { json: string; id: string } {
  const cfg = {
    architecture: 'amd64',
    config: baseConfig(diffId),
    created,
    history: [{ created, comment: 'vibebox agent base, written by the image build' }],
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
  };
  const json = JSON.stringify(cfg);
  return { json, id: sha256(json) };
}

/** Every entry of the store holding the base as its only image (pure). */
export function dockerStore(diffId: string, created: string): StoreLayout {
  if (!/^[0-9a-f]{64}$/.test(diffId)) throw new Error(`not a sha256: ${diffId}`);
  // One layer: its chain id is its diff id. Cache id and link derive from it (Docker picks random
  // ones; any 64 hex / 26 base32 do), so the same tarball gives the same store.
  const chainId = diffId;
  const cacheId = sha256(`vibebox-cache-id\0${diffId}`);
  const link = linkName(diffId);
  const { json, id } = imageConfig(diffId, created);
  const [repo] = BASE_IMAGE.split(':');
  const layerDb = `image/overlay2/layerdb/sha256/${chainId}`;
  const dir = (path: string, mode: number): StoreEntry => ({ path, kind: 'dir', mode });
  const file = (path: string, data: string, mode = 0o644): StoreEntry => ({ path, kind: 'file', mode, data });
  return {
    imageId: id,
    chainId,
    cacheId,
    diffDir: `overlay2/${cacheId}/diff`,
    sizeFile: `${layerDb}/size`,
    entries: [
      dir('image', 0o700),
      dir('image/overlay2', 0o700),
      dir('image/overlay2/layerdb', 0o700),
      dir('image/overlay2/layerdb/sha256', 0o700),
      dir(layerDb, 0o755),
      file(`${layerDb}/diff`, `sha256:${diffId}`),
      file(`${layerDb}/cache-id`, cacheId),
      dir('image/overlay2/imagedb', 0o700),
      dir('image/overlay2/imagedb/content', 0o700),
      dir('image/overlay2/imagedb/content/sha256', 0o700),
      file(`image/overlay2/imagedb/content/sha256/${id}`, json, 0o600),
      file('image/overlay2/repositories.json', JSON.stringify({ Repositories: { [repo!]: { [BASE_IMAGE]: `sha256:${id}` } } }), 0o600),
      dir('overlay2', 0o710),
      dir('overlay2/l', 0o700),
      dir(`overlay2/${cacheId}`, 0o710),
      dir(`overlay2/${cacheId}/diff`, 0o755),
      file(`overlay2/${cacheId}/link`, link),
      { path: `overlay2/l/${link}`, kind: 'symlink', mode: 0o777, data: `../${cacheId}/diff` },
    ],
  };
}
