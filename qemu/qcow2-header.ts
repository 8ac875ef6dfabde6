// A pure parser of the qcow2 header (versions 2 and 3) and its header extensions, as laid out in
// QEMU's docs/interop/qcow2.txt. It reads only what decides which host files QEMU would open and
// how: the backing file name, the external data file, encryption, feature bits, extensions.

export const QCOW2_MAGIC = 0x514649fb; // "QFI\xfb"

/** Header extension types (docs/interop/qcow2.txt). */
export const EXT = {
  end: 0x00000000,
  backingFormat: 0xe2792aca,
  featureNameTable: 0x6803f857,
  bitmaps: 0x23852875,
  fullDiskEncryption: 0x0537be77,
  externalDataFile: 0x44415441,
} as const;

/** Incompatible feature bits: an image with a bit a reader does not know must not be opened. */
export const INCOMPAT = { dirty: 1n << 0n, corrupt: 1n << 1n, externalDataFile: 1n << 2n, compressionType: 1n << 3n, extendedL2: 1n << 4n } as const;
export const COMPAT = { lazyRefcounts: 1n << 0n } as const;
export const AUTOCLEAR = { bitmaps: 1n << 0n, rawExternalData: 1n << 1n } as const;

export interface Qcow2Extension {
  type: number;
  /** The extension's data, without padding. */
  data: Buffer;
}

export interface Qcow2Header {
  version: 2 | 3;
  clusterBits: number;
  size: bigint;
  /** 0 none, 1 AES, 2 LUKS. */
  cryptMethod: number;
  l1Size: number;
  nbSnapshots: number;
  incompatibleFeatures: bigint;
  compatibleFeatures: bigint;
  autoclearFeatures: bigint;
  refcountOrder: number;
  headerLength: number;
  /** 0 zlib, 1 zstd (v3 headers longer than 104 bytes; else 0). */
  compressionType: number;
  /** null when the image has no backing file. */
  backingFile: string | null;
  extensions: Qcow2Extension[];
  /** From the extensions, for convenience (null when absent). */
  backingFormat: string | null;
  externalDataFile: string | null;
}

export class Qcow2FormatError extends Error {
  override readonly name = 'Qcow2FormatError';
}

/** How many bytes of the file the parser needs at most: the header lives in the first cluster. */
export const MAX_HEADER_BYTES = 2 * 1024 * 1024; // the largest cluster (cluster_bits 21)

const V2_HEADER_LENGTH = 72;
const V3_MIN_HEADER_LENGTH = 104;

function need(buf: Buffer, end: number, what: string): void {
  if (end > buf.length) throw new Qcow2FormatError(`truncated qcow2 header: ${what} ends at byte ${end}, only ${buf.length} read`);
}

function decode(b: Buffer, what: string): string {
  // A name with a NUL or invalid UTF-8 cannot be the path vibebox wrote.
  const s = b.toString('utf8');
  if (s.includes('\0') || !Buffer.from(s, 'utf8').equals(b)) throw new Qcow2FormatError(`${what} is not a valid file name`);
  return s;
}

/**
 * Parse the header from the first bytes of the file (at least the first cluster, or the whole
 * file when it is smaller). Throws Qcow2FormatError on anything that is not a well-formed
 * qcow2 v2/v3 header.
 */
export function parseQcow2Header(buf: Buffer): Qcow2Header {
  need(buf, V2_HEADER_LENGTH, 'the fixed header');
  if (buf.readUInt32BE(0) !== QCOW2_MAGIC) throw new Qcow2FormatError('not a qcow2 file (bad magic)');
  const version = buf.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw new Qcow2FormatError(`unsupported qcow2 version ${version}`);
  const backingOffset = buf.readBigUInt64BE(8);
  const backingSize = buf.readUInt32BE(16);
  const clusterBits = buf.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw new Qcow2FormatError(`invalid cluster_bits ${clusterBits}`);
  const clusterSize = 1 << clusterBits;
  const h: Qcow2Header = {
    version,
    clusterBits,
    size: buf.readBigUInt64BE(24),
    cryptMethod: buf.readUInt32BE(32),
    l1Size: buf.readUInt32BE(36),
    nbSnapshots: buf.readUInt32BE(60),
    incompatibleFeatures: 0n,
    compatibleFeatures: 0n,
    autoclearFeatures: 0n,
    refcountOrder: 4,
    headerLength: V2_HEADER_LENGTH,
    compressionType: 0,
    backingFile: null,
    extensions: [],
    backingFormat: null,
    externalDataFile: null,
  };
  if (version === 3) {
    need(buf, V3_MIN_HEADER_LENGTH, 'the version 3 header');
    h.incompatibleFeatures = buf.readBigUInt64BE(72);
    h.compatibleFeatures = buf.readBigUInt64BE(80);
    h.autoclearFeatures = buf.readBigUInt64BE(88);
    h.refcountOrder = buf.readUInt32BE(96);
    h.headerLength = buf.readUInt32BE(100);
    if (h.headerLength < V3_MIN_HEADER_LENGTH || h.headerLength % 8 !== 0 || h.headerLength > clusterSize) {
      throw new Qcow2FormatError(`invalid header_length ${h.headerLength}`);
    }
    if (h.refcountOrder > 6) throw new Qcow2FormatError(`invalid refcount_order ${h.refcountOrder}`);
    if (h.headerLength > 104) {
      need(buf, 105, 'the compression type');
      h.compressionType = buf.readUInt8(104);
    }
  }

  if (backingOffset !== 0n) {
    // QEMU reads the name only from the first cluster and caps it at 1023 bytes.
    if (backingSize === 0 || backingSize > 1023) throw new Qcow2FormatError(`invalid backing_file_size ${backingSize}`);
    const end = backingOffset + BigInt(backingSize);
    if (end > BigInt(clusterSize)) throw new Qcow2FormatError('the backing file name lies outside the first cluster');
    need(buf, Number(end), 'the backing file name');
    h.backingFile = decode(buf.subarray(Number(backingOffset), Number(end)), 'the backing file name');
  }

  // Header extensions: from the end of the header up to the end marker, within the first cluster.
  const limit = Math.min(clusterSize, buf.length);
  let off = h.headerLength;
  for (;;) {
    if (off + 8 > limit) {
      // QEMU stops without an end marker when the cluster ends; a short read must not pass as that.
      if (limit < clusterSize) need(buf, off + 8, 'a header extension');
      break;
    }
    const type = buf.readUInt32BE(off);
    const len = buf.readUInt32BE(off + 4);
    off += 8;
    if (type === EXT.end) break;
    if (len > limit - off) throw new Qcow2FormatError(`header extension 0x${type.toString(16)} runs past the first cluster`);
    const data = Buffer.from(buf.subarray(off, off + len));
    h.extensions.push({ type, data });
    if (type === EXT.backingFormat) h.backingFormat = decode(data, 'the backing file format');
    if (type === EXT.externalDataFile) h.externalDataFile = decode(data, 'the external data file name');
    off += (len + 7) & ~7;
  }
  return h;
}
