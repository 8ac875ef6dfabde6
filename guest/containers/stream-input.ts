// The input side of one run's stream, shared by the engine exec and the in-container runner:
// stdin, its end and pause/resume may all come before the stream exists. Input is held until
// flush(), then handed over in order; later input goes straight through.
import type { Socket } from 'node:net';

export class StreamInput {
  private socket: Socket | null = null;
  private queued: Buffer[] = [];
  private flowing = false;
  private ended = false;
  private paused = false;

  /** Something waits to be handed over (input or its end). */
  get holding(): boolean {
    return this.queued.length > 0 || this.ended;
  }

  write(b: Buffer): void {
    if (this.ended) return;
    if (this.flowing && this.socket) this.socket.write(b);
    else this.queued.push(b);
  }

  /** End of input: the stream is half-closed once everything before it is written. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.flowing) this.socket?.end();
  }

  /** The stream exists: reading follows the pause state from now on; input is still held. */
  attach(socket: Socket): void {
    this.socket = socket;
    if (this.paused) socket.pause();
    else socket.resume();
  }

  /** Hand over what was held, in order; input flows straight through after this. */
  flush(): void {
    const s = this.socket;
    if (!s) throw new Error('StreamInput.flush before attach');
    for (const b of this.queued) s.write(b);
    this.queued = [];
    this.flowing = true;
    if (this.ended) s.end();
  }

  pause(): void {
    this.paused = true;
    this.socket?.pause();
  }

  resume(): void {
    this.paused = false;
    this.socket?.resume();
  }
}
