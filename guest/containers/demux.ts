// Docker's multiplexed attach stream (an exec without a TTY): frames of an 8-byte header
// [stream type, 0, 0, 0, u32 BE size] and that many bytes; type 1 is stdout, 2 stderr.

export type StreamType = 'stdout' | 'stderr';

export class StreamDemuxer {
  private buf: Buffer = Buffer.alloc(0);

  /** Feed bytes as they arrive; returns the payloads complete so far, in order. */
  push(chunk: Buffer): { stream: StreamType; data: Buffer }[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: { stream: StreamType; data: Buffer }[] = [];
    while (this.buf.length >= 8) {
      const type = this.buf[0]!;
      const size = this.buf.readUInt32BE(4);
      if (type > 2 || this.buf[1] !== 0 || this.buf[2] !== 0 || this.buf[3] !== 0) throw new Error(`bad stream header ${this.buf.subarray(0, 8).toString('hex')}`);
      if (this.buf.length < 8 + size) break;
      const data = this.buf.subarray(8, 8 + size);
      // Type 0 (stdin echoed back) does not happen for execs; treat it as output, never drop bytes.
      if (size > 0) out.push({ stream: type === 2 ? 'stderr' : 'stdout', data });
      this.buf = this.buf.subarray(8 + size);
    }
    return out;
  }

  /** Bytes of an incomplete frame still held (non-zero at end of stream means it was cut short). */
  get pending(): number {
    return this.buf.length;
  }
}
