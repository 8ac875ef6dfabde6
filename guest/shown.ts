// Text that a project, a guest or an agent container wrote, shown on the host's terminal: every
// control character (C0, DEL, C1), and the Unicode format characters that reorder or hide text
// (bidi overrides and isolates, zero-width marks), is written as a visible escape, JSON-style, so
// a name cannot move the cursor, erase a line or make one line read as another. Lives on the
// lower side (beside errors.ts) so qemu/, proxy/ and images/ can use it too. See
// docs/architecture.md, "Hostile text".

// ESC, other C0 controls, DEL, C1 controls; U+061C, U+200B–U+200F, U+2028–U+202E, U+2060–U+2069,
// U+FEFF: invisible or reordering characters.
const UNSAFE = /[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;
const UNSAFE_ALL = new RegExp(UNSAFE.source, 'g');

const NAMED: Record<string, string> = { '\x1b': '\\e', '\r': '\\r', '\n': '\\n', '\t': '\\t', '\b': '\\b', '\f': '\\f', '\v': '\\v', '\0': '\\0' };

function escapeChar(c: string): string {
  const named = NAMED[c];
  if (named) return named;
  const code = c.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** True when `s` holds a character that {@link shown} would escape. */
export function hasUnsafeText(s: string): boolean {
  return UNSAFE.test(s);
}

/**
 * `s` safe to print: unchanged when it has nothing unsafe (and no backslash next to an escape),
 * otherwise every unsafe character becomes `\e`, `\r`, `\x07`, `\u202e`…, and a backslash is
 * doubled so an escape the text wrote itself cannot pass for one vibebox made.
 */
export function shown(s: string): string {
  if (!UNSAFE.test(s)) return s;
  return s.replace(/\\/g, '\\\\').replace(UNSAFE_ALL, escapeChar);
}

/** {@link shown}, quoted (JSON-style) when anything was escaped, so the reader sees it is not plain text. */
export function shownQuoted(s: string): string {
  return UNSAFE.test(s) ? `"${shown(s).replace(/"/g, '\\"')}"` : s;
}

/**
 * JSON.stringify for a terminal: JSON escapes C0 controls itself, but DEL, C1 and the bidi and
 * zero-width characters would pass raw; these become \uXXXX too, so the text stays valid JSON
 * with the same value.
 */
export function jsonShown(value: unknown): string {
  return JSON.stringify(value).replace(UNSAFE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
