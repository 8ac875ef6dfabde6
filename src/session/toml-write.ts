// TOML for vibebox's own files (sessions.toml, session.toml), written by @iarna/toml's stringify,
// with its escaping bug mended: 3.0.0 escapes only the first control character of a string
// (`/a\x01\x1b` stays half raw) and writes a string holding `"` as a literal string with its
// control characters raw. TOML forbids both, and a file that does not parse breaks every
// command. A directory name may hold any byte but NUL, so the output is mended and read back
// before anything is written.
import { isDeepStrictEqual } from 'node:util';
import TOML from '@iarna/toml';
import { VibeboxError } from '../errors.js';

/** What a TOML string may not hold raw (tab and newline are escaped by stringify itself). */
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;

const u = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

function basicString(s: string): string {
  return `"${s.replace(/[\\"\x00-\x1f\x7f]/g, (c) => (c === '\\' || c === '"' ? `\\${c}` : u(c)))}"`;
}

/**
 * Escape the raw control characters stringify left inside strings. A small lexer over its output
 * (no comments, bare keys): in "…" and """…""" a raw character becomes \uXXXX; a '…' literal
 * that holds one is rewritten as a basic string (a literal string has no escapes).
 */
function mend(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (text.startsWith('"""', i) || c === '"') {
      const close = text.startsWith('"""', i) ? '"""' : '"';
      out += close;
      i += close.length;
      while (i < text.length && !text.startsWith(close, i)) {
        const d = text[i]!;
        if (d === '\\') {
          out += text.slice(i, i + 2);
          i += 2;
          continue;
        }
        out += RAW_CONTROL.test(d) ? u(d) : d;
        i++;
      }
      out += close;
      i += close.length;
    } else if (c === "'") {
      const end = text.indexOf("'", i + 1);
      const body = text.slice(i + 1, end);
      out += RAW_CONTROL.test(body) ? basicString(body) : `'${body}'`;
      i = end + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

export function stringifyToml(doc: TOML.JsonMap): string {
  const raw = TOML.stringify(doc);
  const text = RAW_CONTROL.test(raw) ? mend(raw) : raw;
  let back: unknown;
  try {
    back = TOML.parse(text);
  } catch {
    back = undefined;
  }
  // Never write a file vibebox cannot read back as what it meant.
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(back ?? null)), JSON.parse(JSON.stringify(doc)))) {
    throw new VibeboxError('E_INTERNAL', 'could not write a TOML file that reads back as written', 'please report this with the directory names involved');
  }
  return text;
}
