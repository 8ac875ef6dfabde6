// Edit [network].entries in vibebox.toml text, keeping the rest of the file (comments too). Pure.
import TOML from '@iarna/toml';

function renderArray(entries: string[]): string {
  return entries.length === 0 ? '[]' : `[\n${entries.map((e) => `  ${JSON.stringify(e)},`).join('\n')}\n]`;
}

/** Replace (or add) `entries = [...]` inside the [network] table. */
export function setNetworkEntries(text: string, entries: string[]): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^\s*\[network\]\s*(#.*)?$/.test(l));
  if (start < 0) return `${text.replace(/\n*$/, '\n')}\n[network]\nentries = ${renderArray(entries)}\n`;
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) if (/^\s*\[/.test(lines[i]!)) {
    end = i;
    break;
  }
  const section = lines.slice(start + 1, end).join('\n');
  // The trailing comment is only one on the same line ([ \t], not \s: a comment on the next line stays).
  const m = /^([ \t]*)entries[ \t]*=[ \t]*\[[\s\S]*?\]([ \t]*#[^\n]*)?/m.exec(section);
  // A ']' inside a quoted entry would confuse the match: verify by parsing the result.
  let next: string;
  if (m) next = section.slice(0, m.index) + `${m[1]}entries = ${renderArray(entries)}${m[2] ?? ''}` + section.slice(m.index + m[0].length);
  else next = `entries = ${renderArray(entries)}\n${section}`;
  const out = [...lines.slice(0, start + 1), next, ...lines.slice(end)].join('\n');
  const parsed = TOML.parse(out) as { network?: { entries?: unknown } };
  if (JSON.stringify(parsed.network?.entries) !== JSON.stringify(entries)) throw new Error('could not edit [network].entries in place');
  return out;
}
