// The supervisor's end of the virtio-serial channel: frames in, typed messages and stdio out.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { AgentMessage, FrameDecoder, Kind, PROTOCOL_VERSION, controlFrame, encodeFrame, readControl, type HostMessage } from '../../guest/protocol.js';

export interface AgentChannelEvents {
  message: [AgentMessage];
  data: [number, 'stdout' | 'stderr', Buffer];
  invalid: [string];
  /** The agent's hello names a protocol version other than ours (it may not parse as today's hello). */
  mismatch: [number];
  close: [];
}

export class AgentChannel extends EventEmitter<AgentChannelEvents> {
  private dec = new FrameDecoder();
  constructor(private sock: Socket) {
    super();
    sock.on('data', (chunk) => {
      let frames;
      try {
        frames = this.dec.push(chunk);
      } catch (e) {
        this.emit('invalid', (e as Error).message);
        sock.destroy();
        return;
      }
      for (const f of frames) {
        if (f.kind === Kind.stdout || f.kind === Kind.stderr) {
          this.emit('data', f.stream, f.kind === Kind.stdout ? 'stdout' : 'stderr', f.payload);
        } else if (f.kind === Kind.control) {
          const r = readControl(f.payload, AgentMessage);
          // A hello from another protocol version is told apart before its schema refuses it.
          const theirs = r.raw === undefined ? null : helloProtocol(r.raw);
          if (theirs !== null && theirs !== PROTOCOL_VERSION) {
            this.emit('mismatch', theirs);
            continue;
          }
          if (r.ok) this.emit('message', r.data);
          else this.emit('invalid', r.error);
        }
      }
    });
    sock.on('close', () => this.emit('close'));
    sock.on('error', () => undefined);
  }

  send(msg: HostMessage): void {
    if (!this.sock.destroyed) this.sock.write(controlFrame(msg));
  }

  stdin(id: number, b: Buffer): void {
    if (!this.sock.destroyed) this.sock.write(encodeFrame(id, Kind.stdin, b));
  }

  /** Stop (true) or resume (false) reading from the guest: backpressure from a slow client. */
  pause(paused: boolean): void {
    if (paused) this.sock.pause();
    else this.sock.resume();
  }

  close(): void {
    this.sock.destroy();
  }
}

/** The protocol number of anything that looks like a hello, whatever else it carries. */
export function helloProtocol(raw: unknown): number | null {
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as { type?: unknown; protocol?: unknown };
  return r.type === 'hello' && typeof r.protocol === 'number' ? r.protocol : null;
}
