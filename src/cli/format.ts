// Small output helpers: relative times and plain tables.
import { shown } from '../../guest/shown.js';

export function timeAgo(iso: string, now = new Date()): string {
  const s = Math.round((now.getTime() - new Date(iso).getTime()) / 1000);
  if (!Number.isFinite(s)) return 'unknown';
  if (s < 0) return 'just now';
  if (s < 45) return 'just now';
  const units: [number, string][] = [[60, 'minute'], [3600, 'hour'], [86400, 'day'], [86400 * 30, 'month'], [86400 * 365, 'year']];
  let unit = units[0]!;
  for (const u of units) if (s >= u[0] * 0.75) unit = u;
  const n = Math.max(1, Math.round(s / unit[0]));
  return `${n} ${unit[1]}${n === 1 ? '' : 's'} ago`;
}

/** Cells are shown() first (a directory name can carry escapes), then padded. */
export function table(headers: string[], cellRows: string[][]): string {
  const rows = cellRows.map((r) => r.map(shown));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(headers), ...rows.map(line)].join('\n');
}
