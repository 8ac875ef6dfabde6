// Edit [network].entries in vibebox.toml text, keeping what the user wrote (comments, layout,
// other keys). Pure. Any valid TOML layout is found by a small scanner: a `[network]` header in
// any spelling (`[ network ]`, `["network"]`), an inline table `network = { … }`, dotted keys
// `network.entries = […]`. Every edit is read back; when a text edit cannot be proven right the
// file is rewritten from its parsed form (comments lost) and the caller is told so.
import TOML from '@iarna/toml';
import { isDeepStrictEqual } from 'node:util';
import { stringifyToml } from '../session/toml-write.js';

export interface NetworkEdit {
  text: string;
  /** true when the file had to be rewritten from its parsed form (its comments are gone) */
  rewritten: boolean;
}

interface Span {
  start: number;
  end: number;
}

interface Element extends Span {
  value: unknown;
}

/** Where the scanner found the [network] parts. */
interface Found {
  /** the value of network.entries */
  entries?: Span & { elements: Element[] | null };
  /** end of the line of a `[network]` header */
  header?: number;
  /** `network = { … }`: the braces (start at '{', end after '}') and whether it holds a key */
  inline?: Span & { empty: boolean };
  /** end of the last line of a root-level dotted `network.x = …` */
  dotted?: number;
}

class Scanner {
  i = 0;
  found: Found = {};
  constructor(private readonly s: string) {}

  private peek(n = 0): string {
    return this.s[this.i + n] ?? '';
  }
  private fail(): never {
    throw new Error(`unexpected text at ${this.i}`);
  }
  private ws(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.i++;
  }
  /** whitespace, newlines and comments (inside arrays) */
  private wsnl(): void {
    for (;;) {
      this.ws();
      const c = this.peek();
      if (c === '#') this.comment();
      else if (c === '\n' || c === '\r') this.i++;
      else return;
    }
  }
  private comment(): void {
    while (this.i < this.s.length && this.peek() !== '\n') this.i++;
  }
  private lineEnd(): number {
    this.ws();
    if (this.peek() === '#') this.comment();
    if (this.peek() === '\r') this.i++;
    if (this.i < this.s.length && this.peek() !== '\n') this.fail();
    return this.i;
  }

  private str(): string {
    const start = this.i;
    const q = this.peek();
    const triple = this.s.startsWith(q.repeat(3), this.i);
    const close = triple ? q.repeat(3) : q;
    this.i += close.length;
    for (;;) {
      if (this.i >= this.s.length) this.fail();
      if (q === '"' && this.peek() === '\\') {
        this.i += 2;
        continue;
      }
      if (this.s.startsWith(close, this.i)) {
        this.i += close.length;
        // a multi-line string may end in up to two more quotes ('''a''''' is "a''")
        for (let n = 0; triple && n < 2 && this.peek() === q; n++) this.i++;
        break;
      }
      if (!triple && this.peek() === '\n') this.fail();
      this.i++;
    }
    const raw = this.s.slice(start, this.i);
    return (TOML.parse(`k = ${raw}`) as { k: string }).k;
  }

  private key(): string[] {
    const parts: string[] = [];
    for (;;) {
      this.ws();
      const c = this.peek();
      if (c === '"' || c === "'") parts.push(this.str());
      else {
        const m = /^[A-Za-z0-9_-]+/.exec(this.s.slice(this.i));
        if (!m) this.fail();
        parts.push(m[0]);
        this.i += m[0].length;
      }
      this.ws();
      if (this.peek() !== '.') return parts;
      this.i++;
    }
  }

  /** One value; `path` is its full key path (for network.entries and network = { … }). */
  private value(path: string[]): Span {
    const start = this.i;
    const c = this.peek();
    const isEntries = path.length === 2 && path[0] === 'network' && path[1] === 'entries';
    if (c === '"' || c === "'") this.str();
    else if (c === '[') {
      this.i++;
      const elements: Element[] = [];
      for (;;) {
        this.wsnl();
        if (this.peek() === ']') break;
        const e = this.value([]);
        elements.push({ ...e, value: isEntries ? this.literal(e) : null });
        this.wsnl();
        if (this.peek() === ',') this.i++;
        else if (this.peek() !== ']') this.fail();
      }
      this.i++;
      if (isEntries) this.found.entries = { start, end: this.i, elements };
      return { start, end: this.i };
    } else if (c === '{') {
      this.i++;
      let empty = true;
      this.ws();
      if (this.peek() === '}') this.i++;
      else
        for (;;) {
          const k = this.key();
          if (this.peek() !== '=') this.fail();
          this.i++;
          this.ws();
          this.value([...path, ...k]);
          empty = false;
          this.ws();
          if (this.peek() === ',') {
            this.i++;
            continue;
          }
          if (this.peek() !== '}') this.fail();
          this.i++;
          break;
        }
      if (path.length === 1 && path[0] === 'network') this.found.inline = { start, end: this.i, empty };
      return { start, end: this.i };
    } else {
      while (this.i < this.s.length && !/[,\]}\n#\r]/.test(this.peek())) this.i++;
      let end = this.i;
      while (end > start && /[ \t]/.test(this.s[end - 1]!)) end--;
      if (end === start) this.fail();
      return { start, end };
    }
    if (isEntries) this.found.entries = { start, end: this.i, elements: null };
    return { start, end: this.i };
  }

  private literal(e: Span): unknown {
    return (TOML.parse(`k = ${this.s.slice(e.start, e.end)}`) as { k: unknown }).k;
  }

  scan(): Found {
    let table: string[] = [];
    while (this.i < this.s.length) {
      this.wsnl();
      if (this.i >= this.s.length) break;
      if (this.peek() === '[') {
        const aot = this.peek(1) === '[';
        this.i += aot ? 2 : 1;
        table = this.key();
        if (this.peek() !== ']' || (aot && this.peek(1) !== ']')) this.fail();
        this.i += aot ? 2 : 1;
        const end = this.lineEnd();
        if (!aot && table.length === 1 && table[0] === 'network') this.found.header = end;
        continue;
      }
      const k = this.key();
      if (this.peek() !== '=') this.fail();
      this.i++;
      this.ws();
      const path = [...table, ...k];
      this.value(path);
      const end = this.lineEnd();
      if (table.length === 0 && k.length > 1 && k[0] === 'network') this.found.dotted = end;
    }
    return this.found;
  }
}

const renderInline = (entries: string[]): string => `[${entries.map((e) => JSON.stringify(e)).join(', ')}]`;
const renderBlock = (entries: string[], indent = '  '): string => (entries.length === 0 ? '[]' : `[\n${entries.map((e) => `${indent}${JSON.stringify(e)},`).join('\n')}\n]`);

function lineStart(s: string, i: number): number {
  return s.lastIndexOf('\n', i - 1) + 1;
}

/**
 * A multi-line array edited element by element: dropped entries lose their line (and the comment
 * on it), new ones get a line of their own after the last one, the rest is left as written.
 * Null when the array is not laid out one entry a line or the edit is not drop-then-append.
 */
function editLines(s: string, arr: Span & { elements: Element[] }, entries: string[]): string | null {
  const { elements } = arr;
  const keep: Element[] = [];
  let j = 0;
  for (const e of elements) {
    if (j < entries.length && e.value === entries[j]) {
      keep.push(e);
      j++;
    }
  }
  const added = entries.slice(j);
  if (keep.length !== j) return null;
  const dropped = elements.filter((e) => !keep.includes(e));
  // every element alone on its line: only blanks before it, only `,` and a comment after it
  const alone = (e: Element): Span | null => {
    const ls = lineStart(s, e.start);
    if (!/^[ \t]*$/.test(s.slice(ls, e.start))) return null;
    const m = /^[ \t]*,?[ \t]*(#[^\n]*)?\n/.exec(s.slice(e.end));
    return m ? { start: ls, end: e.end + m[0].length } : null;
  };
  if (!elements.every((e) => alone(e) !== null)) return null;
  const edits: { at: number; del: number; ins: string }[] = [];
  for (const e of dropped) {
    const l = alone(e)!;
    edits.push({ at: l.start, del: l.end - l.start, ins: '' });
  }
  if (added.length > 0) {
    const last = keep[keep.length - 1] ?? elements[elements.length - 1];
    const indent = last ? s.slice(lineStart(s, last.start), last.start) : '  ';
    const lines = added.map((a) => `${indent}${JSON.stringify(a)},\n`).join('');
    if (last && keep.includes(last)) {
      // the last kept entry needs its comma before new ones follow it
      if (!/^[ \t]*,/.test(s.slice(last.end))) edits.push({ at: last.end, del: 0, ins: ',' });
      edits.push({ at: alone(last)!.end, del: 0, ins: lines });
    } else {
      // nothing kept: new lines go right before the line of the closing bracket
      const close = arr.end - 1;
      const ls = lineStart(s, close);
      if (!/^[ \t]*$/.test(s.slice(ls, close))) return null;
      edits.push({ at: ls, del: 0, ins: lines });
    }
  }
  let out = s;
  for (const ed of edits.sort((a, b) => b.at - a.at)) out = out.slice(0, ed.at) + ed.ins + out.slice(ed.at + ed.del);
  return out;
}

function textEdit(s: string, entries: string[]): string {
  const f = new Scanner(s).scan();
  const nl = s.includes('\r\n') ? '\r\n' : '\n';
  if (f.entries) {
    const { start, end, elements } = f.entries;
    const multiline = s.slice(start, end).includes('\n');
    if (multiline && elements) {
      const byLine = editLines(s, { start, end, elements }, entries);
      if (byLine !== null) return byLine;
    }
    const inInline = f.inline !== undefined && f.inline.start < start && end < f.inline.end;
    const indent = s.slice(lineStart(s, start), start).match(/^[ \t]*/)?.[0] ?? '';
    const rendered = multiline && !inInline ? renderBlock(entries, `${indent}  `).replace(/\n\]$/, `\n${indent}]`) : renderInline(entries);
    return s.slice(0, start) + rendered + s.slice(end);
  }
  if (f.header !== undefined) return `${s.slice(0, f.header)}${nl}entries = ${renderBlock(entries)}${s.slice(f.header)}`;
  if (f.inline) {
    const close = f.inline.end - 1;
    let before = close;
    while (before > f.inline.start + 1 && /[ \t]/.test(s[before - 1]!)) before--;
    return `${s.slice(0, before)}${f.inline.empty ? ' ' : ', '}entries = ${renderInline(entries)} ${s.slice(close)}`;
  }
  if (f.dotted !== undefined) return `${s.slice(0, f.dotted)}${nl}network.entries = ${renderBlock(entries)}${s.slice(f.dotted)}`;
  return `${s.replace(/(\r?\n)*$/, nl)}${nl}[network]${nl}entries = ${renderBlock(entries)}${nl}`;
}

/** Replace (or add) `entries` of the [network] table; `text` must be valid TOML. */
export function editNetworkEntries(text: string, entries: string[]): NetworkEdit {
  const before = TOML.parse(text) as TOML.JsonMap;
  const network = (typeof before['network'] === 'object' && before['network'] !== null ? before['network'] : {}) as TOML.JsonMap;
  const want: TOML.JsonMap = { ...before, network: { ...network, entries } };
  const norm = (x: unknown): unknown => JSON.parse(JSON.stringify(x));
  let out: string | null = null;
  try {
    out = textEdit(text, entries);
    if (!isDeepStrictEqual(norm(TOML.parse(out)), norm(want))) out = null;
  } catch {
    out = null; // a layout the scanner does not follow: rewrite below
  }
  if (out !== null) return { text: out, rewritten: false };
  return { text: stringifyToml(want), rewritten: true };
}

/** The edited text (see editNetworkEntries). */
export function setNetworkEntries(text: string, entries: string[]): string {
  return editNetworkEntries(text, entries).text;
}
