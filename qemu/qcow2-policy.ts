// Which qcow2 overlay headers vibebox boots (pure). vibebox writes one shape with
// `qemu-img create -f qcow2 -F qcow2 -b <rootfs>`: version 3, no encryption, no feature bits, the
// backing file it named, and only the backing-format and feature-name-table extensions. Anything
// else could make QEMU open another host file (an external data file) or was not written by
// vibebox, so it is refused before QEMU sees the file.
import { createHash } from 'node:crypto';
import { AUTOCLEAR, COMPAT, EXT, INCOMPAT, type Qcow2Header } from './qcow2-header.js';

export interface OverlayExpectation {
  /** The backing file name vibebox wrote: the image's rootfs.qcow2. */
  backing: string;
}

/** Incompatible bits QEMU itself sets on an image vibebox made (they open no other file). */
const RUNTIME_INCOMPAT = INCOMPAT.dirty | INCOMPAT.corrupt;
/** The extensions `qemu-img create -F qcow2 -b …` writes. */
const WRITTEN_EXTENSIONS: ReadonlySet<number> = new Set([EXT.backingFormat, EXT.featureNameTable]);

const hex = (n: bigint | number) => `0x${n.toString(16)}`;

function extensionName(type: number): string {
  switch (type) {
    case EXT.externalDataFile:
      return 'an external data file name';
    case EXT.fullDiskEncryption:
      return 'a disk encryption header';
    case EXT.bitmaps:
      return 'dirty bitmaps';
    default:
      return `header extension ${hex(type)}`;
  }
}

/** Every way the header differs from what vibebox writes; empty = boot it. */
export function overlayProblems(h: Qcow2Header, e: OverlayExpectation): string[] {
  const out: string[] = [];
  if (h.version !== 3) out.push(`qcow2 version ${h.version}`);
  if (h.externalDataFile !== null || (h.incompatibleFeatures & INCOMPAT.externalDataFile) !== 0n) {
    out.push(`an external data file${h.externalDataFile !== null ? ` (${JSON.stringify(h.externalDataFile)})` : ''}`);
  }
  if (h.cryptMethod !== 0) out.push(`encryption (method ${h.cryptMethod === 1 ? 'AES' : h.cryptMethod === 2 ? 'LUKS' : h.cryptMethod})`);
  const incompat = h.incompatibleFeatures & ~RUNTIME_INCOMPAT & ~INCOMPAT.externalDataFile;
  if (incompat !== 0n) out.push(`incompatible features ${hex(incompat)}`);
  if (h.compatibleFeatures !== 0n) out.push(`compatible features ${hex(h.compatibleFeatures)}${h.compatibleFeatures & COMPAT.lazyRefcounts ? ' (lazy refcounts)' : ''}`);
  const autoclear = h.autoclearFeatures & ~AUTOCLEAR.rawExternalData; // reported with the data file
  if (autoclear !== 0n) out.push(`autoclear features ${hex(autoclear)}`);
  if (h.compressionType !== 0) out.push(`compression type ${h.compressionType}`);
  if (h.nbSnapshots !== 0) out.push(`${h.nbSnapshots} internal snapshot(s)`);
  if (h.backingFile !== e.backing) out.push(h.backingFile === null ? 'no backing file' : `backing file ${JSON.stringify(h.backingFile)}`);
  if (h.backingFormat !== 'qcow2') out.push(h.backingFormat === null ? 'no backing format' : `backing format ${JSON.stringify(h.backingFormat)}`);
  const seen = new Set<number>();
  for (const x of h.extensions) {
    if (x.type === EXT.externalDataFile) continue; // reported above
    if (!WRITTEN_EXTENSIONS.has(x.type)) out.push(extensionName(x.type));
    else if (seen.has(x.type)) out.push(`a repeated ${extensionName(x.type)}`);
    seen.add(x.type);
  }
  return out;
}

/**
 * A hash of the header fields that are fixed when the overlay is created (QEMU rewrites the
 * others — table offsets, the dirty bit, the header length — while it runs).
 */
export function headerFingerprint(h: Qcow2Header): string {
  const fixed = {
    version: h.version,
    clusterBits: h.clusterBits,
    size: h.size.toString(),
    cryptMethod: h.cryptMethod,
    incompatible: (h.incompatibleFeatures & ~RUNTIME_INCOMPAT).toString(16),
    compatible: h.compatibleFeatures.toString(16),
    refcountOrder: h.refcountOrder,
    compressionType: h.compressionType,
    backingFile: h.backingFile,
    backingFormat: h.backingFormat,
    externalDataFile: h.externalDataFile,
    extensions: [...new Set(h.extensions.map((x) => x.type))].sort((a, b) => a - b),
  };
  return createHash('sha256').update(JSON.stringify(fixed)).digest('hex');
}
