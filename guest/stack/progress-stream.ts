// Reading a long operation's answer from the stack-controller (api.ts ProgressMessage): one JSON
// object a line, progress lines, then one result. A line that is not a valid message is a
// protocol error, never printed or obeyed.
import { StringDecoder } from 'node:string_decoder';
import { ProgressMessage, type StackOutcome } from './api.js';

/** At most this much of one line is held (a controller gone wrong must not fill the memory). */
const MAX_LINE = 1024 * 1024;

export class ProgressReader {
  private readonly decoder = new StringDecoder('utf8');
  private buf = '';
  result: StackOutcome | null = null;
  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: Buffer): void {
    this.buf += this.decoder.write(chunk);
    for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
      const l = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (l.trim() !== '') this.take(l);
    }
    if (this.buf.length > MAX_LINE) throw new Error('the stack-controller sent a line longer than 1 MiB');
  }

  /** The result, once the answer ended (an answer without one is an error outcome). */
  end(): StackOutcome {
    const rest = this.buf + this.decoder.end();
    this.buf = '';
    if (rest.trim() !== '') this.take(rest);
    return this.result ?? { ok: false, status: 'error', reason: 'the controller ended without a result' };
  }

  private take(l: string): void {
    let raw: unknown;
    try {
      raw = JSON.parse(l);
    } catch {
      throw new Error('the stack-controller sent a line that is not JSON');
    }
    const m = ProgressMessage.safeParse(raw);
    if (!m.success) throw new Error(`the stack-controller sent an invalid message: ${m.error.issues[0]?.message ?? ''}`);
    if (m.data.type === 'line') this.onLine(m.data.line);
    else if (this.result === null) this.result = m.data.result;
    else throw new Error('the stack-controller sent two results');
  }
}

/** A whole answer read from `chunks` (an HTTP response body). */
export async function readProgress(chunks: AsyncIterable<Buffer>, onLine: (line: string) => void): Promise<StackOutcome> {
  const r = new ProgressReader(onLine);
  for await (const c of chunks) r.push(c);
  return r.end();
}
