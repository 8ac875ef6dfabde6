// The output of a review command run in the VM (stack diff/status/apply, changes, agents, kit…)
// as the host prints it: every line through shown(), newlines kept. The VM renders these from
// what the agent container or a stack service wrote, and the VM itself is not trusted with the
// host's terminal (docs/architecture.md, "Hostile text"). Never used for `vibebox run`, whose
// output is the user's own program talking to the user's terminal.
import { StringDecoder } from 'node:string_decoder';
import { shown } from '../../guest/shown.js';

export class ShownLines {
  private readonly decoder = new StringDecoder('utf8');
  private rest = '';
  /** `maxLine`: a longer line without a newline is passed on in escaped pieces, never held whole. */
  constructor(private readonly maxLine = 64 * 1024) {}

  /** Escaped text for the complete lines so far (a partial line waits for its end). */
  push(chunk: Buffer): string {
    const text = this.rest + this.decoder.write(chunk);
    const nl = text.lastIndexOf('\n');
    if (nl < 0) {
      if (text.length <= this.maxLine) {
        this.rest = text;
        return '';
      }
      this.rest = '';
      return shown(text);
    }
    this.rest = text.slice(nl + 1);
    return `${text.slice(0, nl).split('\n').map(shown).join('\n')}\n`;
  }

  /** What is left at the end of the stream, escaped. */
  end(): string {
    const text = this.rest + this.decoder.end();
    this.rest = '';
    return text === '' ? '' : shown(text);
  }
}
