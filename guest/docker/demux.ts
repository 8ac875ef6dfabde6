// Docker's multiplexed attach stream (an exec without a TTY): frames of an 8-byte header
// [stream type, 0, 0, 0, u32 BE size] and that many bytes; type 1 is stdout, 2 stderr.

// The in-container runner (runner.ts) speaks the same framing, with types 3 (exit) and 4 (error).

export type StreamType = 'stdout' | 'stderr';

/** One frame: header and payload. */
export function muxFrame(type: number, data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const h = Buffer.alloc(8);
  h[0] = type;
  h.writeUInt32BE(body.length, 4);
  return Buffer.concat([h, body]);
}

export class StreamDemuxer {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly maxType = 2) {}

  /** Feed bytes as they arrive; returns the frames complete so far, in order. */
  frames(chunk: Buffer): { type: number; data: Buffer }[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: { type: number; data: Buffer }[] = [];
    while (this.buf.length >= 8) {
      const type = this.buf[0]!;
      const size = this.buf.readUInt32BE(4);
      if (type > this.maxType || this.buf[1] !== 0 || this.buf[2] !== 0 || this.buf[3] !== 0 || size > 64 * 1024 * 1024) throw new Error(`bad stream header ${this.buf.subarray(0, 8).toString('hex')}`);
      if (this.buf.length < 8 + size) break;
      out.push({ type, data: this.buf.subarray(8, 8 + size) });
      this.buf = this.buf.subarray(8 + size);
    }
    return out;
  }

  /** Feed bytes as they arrive; returns the output payloads complete so far, in order. */
  push(chunk: Buffer): { stream: StreamType; data: Buffer }[] {
    const out: { stream: StreamType; data: Buffer }[] = [];
    for (const { type, data } of this.frames(chunk)) {
      // Type 0 (stdin echoed back) does not happen for execs; treat it as output, never drop bytes.
      if (data.length > 0 && type <= 2) out.push({ stream: type === 2 ? 'stderr' : 'stdout', data });
    }
    return out;
  }

  /** Bytes of an incomplete frame still held (non-zero at end of stream means it was cut short). */
  get pending(): number {
    return this.buf.length;
  }
}
