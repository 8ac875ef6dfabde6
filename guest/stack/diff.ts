// Live (applied) manifest vs proposed: what `vibebox stack diff` shows and what apply's y/N prompt
// asks about. Pure: values are compared in their display form, so what differs is what is shown.
import type { Healthcheck, Manifest, ServiceSpec } from './manifest.js';
import { shown } from '../shown.js';

export interface FieldChange {
  /** `image`, `command`, `env.NAME`, `volumes.NAME`, `healthcheck`, `resources.cpus`, `resources.memory`, `cap_add`. */
  field: string;
  /** Display values; null when the field is absent on that side. */
  from: string | null;
  to: string | null;
}

export interface ServiceDiff {
  name: string;
  kind: 'added' | 'removed' | 'changed' | 'unchanged';
  /** For added: every field it sets; for changed: the fields that differ; else empty. */
  changes: FieldChange[];
}

export interface StackDiff {
  /** Proposed services in manifest order, then removed ones in live order. */
  services: ServiceDiff[];
  added: string[];
  removed: string[];
  changed: string[];
  unchanged: string[];
  /** Nothing would change. */
  empty: boolean;
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

export function formatMemory(n: number): string {
  if (n % GiB === 0) return `${n / GiB}g`;
  if (n % MiB === 0) return `${n / MiB}m`;
  return `${n}b`;
}

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

function formatHealth(h: Healthcheck | null): string | null {
  if (h === null) return null;
  const [kind, ...rest] = h.test;
  const cmd = kind === 'CMD-SHELL' ? `sh -c ${JSON.stringify(rest[0] ?? '')}` : rest.join(' ');
  const start = h.startPeriodMs > 0 ? `, start period ${seconds(h.startPeriodMs)}` : '';
  return `${cmd} every ${seconds(h.intervalMs)}, timeout ${seconds(h.timeoutMs)}, ${h.retries} retries${start}${h.source === 'default' ? ' (default)' : ''}`;
}

/** A service as field → display value, in a fixed field order. */
export function serviceFields(s: ServiceSpec): Map<string, string> {
  const f = new Map<string, string>();
  f.set('image', s.image.ref);
  if (s.command !== null) f.set('command', JSON.stringify(s.command));
  for (const k of Object.keys(s.env).sort()) f.set(`env.${k}`, JSON.stringify(s.env[k]));
  for (const v of s.volumes) f.set(`volumes.${v.name}`, `${v.target}${v.readOnly ? ' (ro)' : ''}`);
  const h = formatHealth(s.healthcheck);
  if (h !== null) f.set('healthcheck', h);
  f.set('resources.cpus', String(s.cpus));
  f.set('resources.memory', formatMemory(s.memoryBytes));
  if (s.capAdd.length > 0) f.set('cap_add', s.capAdd.join(', '));
  return f;
}

function fieldChanges(from: ServiceSpec | null, to: ServiceSpec | null): FieldChange[] {
  const a = from ? serviceFields(from) : new Map<string, string>();
  const b = to ? serviceFields(to) : new Map<string, string>();
  const keys = [...b.keys(), ...[...a.keys()].filter((k) => !b.has(k))];
  const out: FieldChange[] = [];
  for (const field of keys) {
    const x = a.get(field) ?? null;
    const y = b.get(field) ?? null;
    if (x !== y) out.push({ field, from: x, to: y });
  }
  return out;
}

/** live: the applied manifest (null: nothing applied); proposed: null means "remove everything". */
export function diffManifests(live: Manifest | null, proposed: Manifest | null): StackDiff {
  const before = new Map((live?.services ?? []).map((s) => [s.name, s]));
  const after = new Map((proposed?.services ?? []).map((s) => [s.name, s]));
  const services: ServiceDiff[] = [];
  for (const s of proposed?.services ?? []) {
    const old = before.get(s.name);
    if (old === undefined) services.push({ name: s.name, kind: 'added', changes: fieldChanges(null, s) });
    else {
      const changes = fieldChanges(old, s);
      services.push({ name: s.name, kind: changes.length > 0 ? 'changed' : 'unchanged', changes });
    }
  }
  for (const s of live?.services ?? []) {
    if (!after.has(s.name)) services.push({ name: s.name, kind: 'removed', changes: [] });
  }
  const of = (k: ServiceDiff['kind']) => services.filter((s) => s.kind === k).map((s) => s.name);
  const d = { services, added: of('added'), removed: of('removed'), changed: of('changed'), unchanged: of('unchanged') };
  return { ...d, empty: d.added.length + d.removed.length + d.changed.length === 0 };
}

/**
 * The text `vibebox stack diff` prints and apply shows before its y/N. Names and values are the
 * agent's (volume targets, healthcheck arguments): escaped, so none can rewrite the prompt.
 */
export function renderDiff(d: StackDiff): string {
  if (d.empty) return `No changes (${d.unchanged.length} service${d.unchanged.length === 1 ? '' : 's'} unchanged).\n`;
  const lines = [`Stack changes: ${d.added.length} to add, ${d.changed.length} to change, ${d.removed.length} to remove, ${d.unchanged.length} unchanged`];
  for (const s of d.services) {
    if (s.kind === 'added') {
      lines.push(`+ ${shown(s.name)} (new)`);
      for (const c of s.changes) lines.push(`    ${shown(c.field)}: ${shown(c.to ?? '')}`);
    } else if (s.kind === 'changed') {
      lines.push(`~ ${shown(s.name)}`);
      for (const c of s.changes) lines.push(`    ${shown(c.field)}: ${c.from === null ? '(unset)' : shown(c.from)} → ${c.to === null ? '(unset)' : shown(c.to)}`);
    } else if (s.kind === 'removed') {
      lines.push(`- ${shown(s.name)} (removed; its volumes are kept until destroy)`);
    } else {
      lines.push(`  ${shown(s.name)} (unchanged)`);
    }
  }
  return `${lines.join('\n')}\n`;
}
