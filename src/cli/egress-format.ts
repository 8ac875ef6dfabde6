// `vibebox logs egress`: the JSON lines of egress.log as one readable line each, or (--json)
// as JSON lines for scripts. The file is in the project's .vibebox/, which a guest may write:
// every line is parsed, only known fields are read, and text goes through shown().
import { shown } from '../../guest/shown.js';

const str = (v: unknown): string => (typeof v === 'string' ? shown(v) : '');
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function parse(line: string): Record<string, unknown> | null {
  try {
    const v: unknown = JSON.parse(line);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** One log line for a script: the record re-serialised (so no raw control character passes), or null when it is not one. */
export function egressJson(line: string): string | null {
  const r = parse(line);
  return r === null ? null : JSON.stringify(r);
}

/** One log line for a person, or null when it is not a record. */
export function egressText(line: string): string | null {
  const r = parse(line);
  if (r === null) return null;
  const port = num(r['port']);
  const where = `${str(r['host']) || '-'}${port !== undefined && port !== 443 && port !== 80 ? `:${port}` : ''}${str(r['path'])}`;
  const parts = [str(r['ts']), str(r['method']) || '-', where, String(num(r['status']) ?? '-')];
  const up = num(r['bytes_up']);
  const down = num(r['bytes_down']);
  if (up !== undefined || down !== undefined) parts.push(`${up ?? 0}B up ${down ?? 0}B down`);
  const ms = num(r['duration_ms']);
  if (ms !== undefined) parts.push(`${ms}ms`);
  parts.push(`${str(r['decision'])} (${str(r['reason'])}${r['rule'] ? `: ${str(r['rule'])}` : ''})`);
  if (r['intercepted'] === true) parts.push('tls terminated by the host proxy');
  if (r['injected']) parts.push(`key injected by rule ${str(r['injected'])}`);
  if (r['error']) parts.push(`error ${str(r['error'])}`);
  const rep = num(r['repeated']);
  if (rep !== undefined) parts.push(`×${rep}`);
  return parts.join(' ');
}
