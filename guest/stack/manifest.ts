// The stack manifest: what an agent proposes, validated strictly before anyone applies it.
// Input is an already-parsed value (manifest-text.ts parses YAML); output is either a normalized
// Manifest or EVERY rejection at once, each {code, path, message, hint_for_agent}, in document order,
// so an agent fixes its draft in one round instead of one error per round.
//
// Policy, and why (defaults in DEFAULT_POLICY; the controller may pass its own):
// - Registries: only Docker Official Images (docker.io/library/*) by default: curated, rebuilt for
//   CVEs, what an agent means by "redis:7.4". ghcr.io, quay.io and Docker Hub user namespaces are
//   open to anyone, so they are opt-in entries ("ghcr.io/org", "quay.io"). `local/<name>:<tag>`
//   (built in this VM from Debian packages) is always allowed: it is never pulled.
// - Tags: required and never `latest` (a digest `@sha256:…` pins even better and is accepted): an
//   approved manifest must mean the same image tomorrow.
// - Volumes: named only. Any host path (absolute, relative, ~) would hand a service the VM's files.
// - env `${VAR}`: substituted from the controller's environment at apply, so only names on an
//   allowlist (default TZ): otherwise a manifest could copy a secret into a service the agent reads.
// - Capabilities: every service runs with cap_drop ALL, no-new-privileges, plus BASE_CAPS (what
//   database entrypoints need to chown their data directory and drop to their own user). cap_add may
//   add only SAFE_CAP_ADD: each acts inside the container's own namespaces and cgroup. Excluded on
//   purpose: SYS_ADMIN/NET_ADMIN/SYS_PTRACE/SYS_MODULE (escape or sniff), NET_RAW (spoofing on the
//   network shared with the agent), MKNOD, DAC_READ_SEARCH (open_by_handle_at: the "shocker"
//   escape, why Docker drops it too), SYS_RESOURCE (lifts limits the caps are there to hold).
// - Resources: cpus and memory default per service, bounded per service and memory in total (the
//   VM is the wall: services beyond its memory would get the guest agent OOM-killed).
import * as z from 'zod';

export type ManifestErrorCode =
  | 'yaml_invalid'
  | 'manifest_too_large'
  | 'unknown_key'
  | 'key_missing'
  | 'type_invalid'
  | 'value_invalid'
  | 'version_unsupported'
  | 'services_empty'
  | 'services_too_many'
  | 'service_name_invalid'
  | 'service_name_reserved'
  | 'image_invalid'
  | 'image_tag_missing'
  | 'image_tag_latest'
  | 'image_registry_not_allowed'
  | 'image_local_invalid'
  | 'command_invalid'
  | 'env_key_invalid'
  | 'env_key_duplicate'
  | 'env_value_invalid'
  | 'env_interpolation_invalid'
  | 'env_var_not_allowed'
  | 'volume_host_bind'
  | 'volume_invalid'
  | 'volume_name_invalid'
  | 'volume_target_invalid'
  | 'volume_target_duplicate'
  | 'cap_not_allowed'
  | 'healthcheck_test_invalid'
  | 'healthcheck_test_missing'
  | 'duration_invalid'
  | 'value_out_of_range'
  | 'cpus_invalid'
  | 'cpus_out_of_range'
  | 'memory_invalid'
  | 'memory_out_of_range'
  | 'resources_total_exceeded';

export interface ManifestError {
  code: ManifestErrorCode;
  /** Where in the manifest: `services.redis.volumes[0]`; '' for the whole document. */
  path: string;
  message: string;
  hint_for_agent: string;
}

export interface StackPolicy {
  /** Allowed image prefixes, "registry/namespace" or "registry" (docker.io names normalized). */
  registries: readonly string[];
  /** Names `${VAR}` may reference in env. */
  envVars: readonly string[];
  /** What cap_add may contain (BASE_CAPS are granted anyway). */
  capAdd: readonly string[];
  maxCpus: number;
  maxMemoryBytes: number;
  maxTotalMemoryBytes: number;
  defaultCpus: number;
  defaultMemoryBytes: number;
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

export const MAX_SERVICES = 16;
export const BASE_CAPS: readonly string[] = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETGID', 'SETUID'];
export const SAFE_CAP_ADD: readonly string[] = [
  ...BASE_CAPS,
  'FSETID', // keep set-id bits on files the service itself writes
  'IPC_LOCK', // mlock (neo4j, elasticsearch, vault): memory stays under the cgroup cap
  'KILL', // signal other uids, in the container's own pid namespace only
  'NET_BIND_SERVICE', // ports < 1024 in the container's own network namespace
  'SYS_NICE', // priorities within the container's own CPU quota
];

export const DEFAULT_POLICY: StackPolicy = {
  registries: ['docker.io/library'],
  envVars: ['TZ'],
  capAdd: SAFE_CAP_ADD,
  maxCpus: 2,
  maxMemoryBytes: 2 * GiB,
  maxTotalMemoryBytes: 4 * GiB,
  defaultCpus: 1,
  defaultMemoryBytes: 512 * MiB,
};

/** Names a service may not take: they mean something else to the agent container's resolver. */
export const RESERVED_SERVICE_NAMES: readonly string[] = ['localhost', 'host', 'gateway', 'agent', 'vibebox', 'proxy', 'relay', 'controller', 'stack-controller'];

export interface ImageRef {
  /** As written in the manifest (what the diff shows and docker is given). */
  ref: string;
  /** Canonical registry/repository: docker.io/library/redis, local/redis. */
  repository: string;
  tag: string | null;
  digest: string | null;
  local: boolean;
}

export interface VolumeMount {
  /** The manifest's name for it; the Docker volume is named per service by plan.ts. */
  name: string;
  target: string;
  readOnly: boolean;
}

export interface Healthcheck {
  /** Docker's form: ['CMD', argv…] or ['CMD-SHELL', script]. */
  test: string[];
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
  /** 'default' when it came from DEFAULT_HEALTHCHECKS rather than the manifest. */
  source: 'manifest' | 'default';
}

export interface ServiceSpec {
  name: string;
  image: ImageRef;
  command: string[] | null;
  /** Values as written: `${VAR}` and `$$` are substituted at apply (plan.ts resolveEnv). */
  env: Record<string, string>;
  volumes: VolumeMount[];
  healthcheck: Healthcheck | null;
  cpus: number;
  memoryBytes: number;
  /** Requested on top of BASE_CAPS, normalized (no CAP_ prefix, upper case), sorted, unique. */
  capAdd: string[];
}

export interface Manifest {
  version: 1;
  /** In document order. */
  services: ServiceSpec[];
}

export type ValidationResult = { ok: true; manifest: Manifest } | { ok: false; errors: ManifestError[] };

// ---------------------------------------------------------------------------------------------
// Hints for keys people bring from docker compose: the agent learns what to write instead.
const KEY_HINTS: Record<string, string> = {
  privileged: 'services never run privileged; if the image needs one capability, ask for it in cap_add (allowed: ' + SAFE_CAP_ADD.join(', ') + ')',
  network_mode: 'services share one internal stack network and are reached by service name; remove network_mode',
  networks: 'services share one internal stack network and are reached by service name; remove networks',
  build: 'images are not built from a manifest; ask the user to build one with `vibebox stack image <name> --apt <packages>` and use image: local/<name>:<tag>',
  devices: 'services get no host devices; remove devices',
  pid: 'services get their own pid namespace; remove pid',
  ipc: 'services get their own IPC namespace; remove ipc',
  volumes_from: 'share data through a named volume per service instead; remove volumes_from',
  ports: 'no ports are published: the agent reaches a service by its name on the stack network (e.g. redis:6379); remove ports',
  expose: 'every port of a service is reachable by its name from the agent; remove expose',
  environment: 'write env: (a map of NAME: value) instead of environment:',
  mem_limit: 'write resources: {memory: 512m} instead of mem_limit',
  cpus: 'write resources: {cpus: 1} instead of a top-level cpus',
  deploy: 'write resources: {cpus: 1, memory: 512m} instead of deploy',
  depends_on: 'services start in manifest order and apply waits for every healthcheck; remove depends_on',
  container_name: 'container names are chosen by vibebox; the service name is the DNS name; remove container_name',
  hostname: 'the service name is the host name; remove hostname',
  restart: 'vibebox restarts services itself; remove restart',
  security_opt: 'security options are fixed (no-new-privileges); remove security_opt',
  cap_drop: 'every service starts with all capabilities dropped; remove cap_drop and list only what you need in cap_add',
  user: 'run as the image’s own user; remove user',
  extra_hosts: 'name resolution is fixed to the stack network; remove extra_hosts',
  dns: 'name resolution is fixed to the stack network; remove dns',
  sysctls: 'sysctls cannot be set; remove sysctls',
  ulimits: 'ulimits cannot be set; remove ulimits',
  userns_mode: 'remove userns_mode',
  cgroup_parent: 'remove cgroup_parent',
  tmpfs: 'use a named volume instead of tmpfs',
  env_file: 'files are not read from the host; list variables in env:',
  labels: 'labels are set by vibebox; remove labels',
  entrypoint: 'only command: can be set; it is passed to the image’s entrypoint',
  secrets: 'there are no secrets; use env: with values the user may see in the diff',
  configs: 'there are no configs; bake files into a local image instead',
};

const TOP_KEY_HINTS: Record<string, string> = {
  volumes: 'named volumes are declared per service (volumes: {data: /data}) and created automatically; remove the top-level volumes',
  networks: 'vibebox creates one internal stack network; remove the top-level networks',
  name: 'the stack is named after the project; remove name',
};

// ---------------------------------------------------------------------------------------------
// Issues with our codes travel through zod as custom issues whose params carry code and hint.
interface CodedParams {
  code: ManifestErrorCode;
  hint: string;
}

type Ctx = z.RefinementCtx;
type Path = (string | number)[];

function fail(ctx: Ctx, code: ManifestErrorCode, message: string, hint: string, path: Path = []): typeof z.NEVER {
  const params: CodedParams = { code, hint };
  ctx.addIssue({ code: 'custom', message, params, path });
  return z.NEVER;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  return typeof v === 'string' ? JSON.stringify(v) : `${typeof v} ${String(v)}`;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------
// Images

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** "registry/namespace" allowlist entries, normalized like image repositories. */
export function normalizeRegistryEntry(entry: string): string {
  const e = entry.trim().replace(/\/+$/, '').toLowerCase();
  const [first, ...rest] = e.split('/');
  if (first !== undefined && DOCKER_HUB.has(first)) return ['docker.io', ...rest].join('/');
  return e;
}

export type ImageParse = { ok: true; image: ImageRef } | { ok: false; code: ManifestErrorCode; message: string; hint: string };

const IMAGE_HINT = 'write a tagged image such as redis:7.4 or postgres:16.4 (Docker Official Images), or local/<name>:<tag> for an image the user built in the VM';

export function parseImageRef(ref: string, policy: StackPolicy = DEFAULT_POLICY): ImageParse {
  const bad = (code: ManifestErrorCode, message: string, hint = IMAGE_HINT): ImageParse => ({ ok: false, code, message, hint });
  if (ref.length === 0 || ref.length > 255 || /\s/.test(ref)) return bad('image_invalid', `image ${JSON.stringify(ref)} is not an image reference`);
  let rest = ref;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) return bad('image_invalid', `image ${JSON.stringify(ref)} has a malformed digest`, 'a digest is @sha256: followed by 64 lower-case hex digits');
  }
  let tag: string | null = null;
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) return bad('image_invalid', `image ${JSON.stringify(ref)} has a malformed tag ${JSON.stringify(tag)}`);
  }
  const parts = rest.split('/');
  let domain = 'docker.io';
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN.test(first)) return bad('image_invalid', `image ${JSON.stringify(ref)} has a malformed registry ${JSON.stringify(first)}`);
    domain = DOCKER_HUB.has(first.toLowerCase()) ? 'docker.io' : first.toLowerCase();
    parts.shift();
  }
  if (parts.length === 0 || !parts.every((p) => PATH_COMPONENT.test(p))) {
    return bad('image_invalid', `image ${JSON.stringify(ref)} is not an image reference (names are lower case: letters, digits, . _ -)`);
  }
  const isLocal = domain === 'docker.io' && parts[0] === 'local' && ref.startsWith('local/');
  if (isLocal) {
    const localHint = 'write local/<name>:<tag> exactly as the user built it (vibebox stack image <name> prints it)';
    if (parts.length !== 2 || digest !== null) return bad('image_local_invalid', `local image ${JSON.stringify(ref)} must be local/<name>:<tag>`, localHint);
    if (tag === null) return bad('image_tag_missing', `local image ${JSON.stringify(ref)} has no tag`, localHint);
    if (tag.toLowerCase() === 'latest') return bad('image_tag_latest', `local image ${JSON.stringify(ref)} uses the tag latest`, localHint);
    return { ok: true, image: { ref, repository: `local/${parts[1]}`, tag, digest: null, local: true } };
  }
  if (domain === 'docker.io' && parts.length === 1) parts.unshift('library');
  const repository = `${domain}/${parts.join('/')}`;
  if (tag === null && digest === null) {
    return bad('image_tag_missing', `image ${JSON.stringify(ref)} has no tag`, `pin a version, e.g. ${ref}:<version> (never latest); check the tags the registry offers`);
  }
  if (tag !== null && tag.toLowerCase() === 'latest') {
    return bad('image_tag_latest', `image ${JSON.stringify(ref)} uses the tag latest`, `pin a version instead of latest, e.g. ${ref.slice(0, ref.lastIndexOf(':'))}:<version>`);
  }
  const allowed = policy.registries.map(normalizeRegistryEntry).some((e) => repository === e || repository.startsWith(`${e}/`));
  if (!allowed) {
    return bad(
      'image_registry_not_allowed',
      `image ${JSON.stringify(ref)} (${repository}) is not from an allowed registry (allowed: ${policy.registries.join(', ')}, local/)`,
      'use a Docker Official Image (e.g. redis:7.4, postgres:16.4), or ask the user to build it in the VM with `vibebox stack image <name> --apt <packages>` and use local/<name>:<tag>; only the user can widen the registry allowlist',
    );
  }
  return { ok: true, image: { ref, repository, tag, digest, local: false } };
}

const imageSchema = (policy: StackPolicy) =>
  z.unknown().transform((v, ctx): ImageRef => {
    if (v === undefined) return fail(ctx, 'key_missing', 'image is required', IMAGE_HINT);
    if (typeof v !== 'string') return fail(ctx, 'type_invalid', `image must be a string, got ${describe(v)}`, IMAGE_HINT);
    const r = parseImageRef(v, policy);
    if (!r.ok) return fail(ctx, r.code, r.message, r.hint);
    return r.image;
  });

// ---------------------------------------------------------------------------------------------
// command: a list of strings, or one string split like a shell would (quotes, backslash), no shell.

/** Shell-like word splitting without expansion; null on an unbalanced quote. */
export function splitWords(s: string): string[] | null {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string;
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1] as string)) cur += s[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\') {
      if (i + 1 >= s.length) return null;
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote !== null) return null;
  if (inWord) words.push(cur);
  return words;
}

const COMMAND_HINT = 'write command as a list of strings, e.g. command: ["redis-server", "--appendonly", "yes"]';

const commandSchema = z.unknown().transform((v, ctx): string[] | null => {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') {
    const words = splitWords(v);
    if (words === null || words.length === 0 || v.includes('\0')) return fail(ctx, 'command_invalid', `command ${JSON.stringify(v)} is empty or has an unbalanced quote`, COMMAND_HINT);
    return words;
  }
  if (Array.isArray(v) && v.length > 0) {
    let ok = true;
    v.forEach((w, i) => {
      if (typeof w !== 'string' || w.includes('\0')) {
        ok = false;
        fail(ctx, 'command_invalid', `command[${i}] must be a string without NUL bytes, got ${describe(w)}`, COMMAND_HINT, [i]);
      }
    });
    return ok ? (v as string[]) : z.NEVER;
  }
  return fail(ctx, 'command_invalid', `command must be a string or a non-empty list of strings, got ${describe(v)}`, COMMAND_HINT);
});

// ---------------------------------------------------------------------------------------------
// env

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export type EnvPart = { literal: string } | { variable: string };

/** Split an env value into literals and `${VAR}` references ($$ is a literal $); error text or parts. */
export function parseEnvValue(value: string): { ok: true; parts: EnvPart[] } | { ok: false; message: string } {
  const parts: EnvPart[] = [];
  let lit = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c !== '$') {
      lit += c;
      continue;
    }
    const next = value[i + 1];
    if (next === '$') {
      lit += '$';
      i++;
    } else if (next === '{') {
      const end = value.indexOf('}', i + 2);
      const name = end < 0 ? '' : value.slice(i + 2, end);
      if (end < 0 || !ENV_NAME.test(name)) {
        return { ok: false, message: `\${…} in ${JSON.stringify(value)} must be a plain \${NAME} (no defaults, no nesting)` };
      }
      if (lit) parts.push({ literal: lit });
      lit = '';
      parts.push({ variable: name });
      i = end;
    } else if (next !== undefined && /[A-Za-z_]/.test(next)) {
      return { ok: false, message: `$${next}… in ${JSON.stringify(value)} is an unbraced variable` };
    } else {
      lit += '$';
    }
  }
  if (lit) parts.push({ literal: lit });
  return { ok: true, parts };
}

const ENV_HINT = 'write env as a map of NAME: "value" (quote numbers with leading zeros or decimals)';

const envSchema = (policy: StackPolicy) =>
  z.unknown().transform((v, ctx): Record<string, string> => {
    if (v === undefined || v === null) return {};
    const out: Record<string, string> = {};
    let ok = true;
    const entries: [string, unknown, Path][] = [];
    if (isMap(v)) {
      for (const [k, val] of Object.entries(v)) entries.push([k, val, [k]]);
    } else if (Array.isArray(v)) {
      // compose's list form: ["NAME=value", …]
      v.forEach((item, i) => {
        if (typeof item !== 'string' || !item.includes('=')) {
          ok = false;
          fail(ctx, 'env_value_invalid', `env[${i}] must be "NAME=value", got ${describe(item)}`, ENV_HINT, [i]);
          return;
        }
        const eq = item.indexOf('=');
        entries.push([item.slice(0, eq), item.slice(eq + 1), [i]]);
      });
    } else {
      return fail(ctx, 'type_invalid', `env must be a map, got ${describe(v)}`, ENV_HINT);
    }
    for (const [k, val, path] of entries) {
      if (!ENV_NAME.test(k)) {
        ok = false;
        fail(ctx, 'env_key_invalid', `env name ${JSON.stringify(k)} is not a valid variable name`, 'env names are letters, digits and _, not starting with a digit', path);
        continue;
      }
      if (Object.hasOwn(out, k)) {
        ok = false;
        fail(ctx, 'env_key_duplicate', `env ${k} is set twice`, 'set each variable once', path);
        continue;
      }
      let s: string;
      if (typeof val === 'string' && !val.includes('\0')) s = val;
      else if (typeof val === 'boolean' || (typeof val === 'number' && Number.isSafeInteger(val))) s = String(val);
      else {
        ok = false;
        fail(ctx, 'env_value_invalid', `env ${k} must be a string, got ${describe(val)}`, `${ENV_HINT}; a value passed through from the host is not supported`, path);
        continue;
      }
      const parsed = parseEnvValue(s);
      if (!parsed.ok) {
        ok = false;
        fail(ctx, 'env_interpolation_invalid', `env ${k}: ${parsed.message}`, 'write ${NAME} for an allowed variable, or $$ for a literal $', path);
        continue;
      }
      const refused = parsed.parts.flatMap((p) => ('variable' in p && !policy.envVars.includes(p.variable) ? [p.variable] : []));
      if (refused.length > 0) {
        ok = false;
        fail(
          ctx,
          'env_var_not_allowed',
          `env ${k} references \${${refused.join('}, ${')}}, not on the allowlist (${policy.envVars.join(', ') || 'none'})`,
          'write the value itself (the user sees it in the diff); values from the controller’s environment are limited to the allowlist',
          path,
        );
        continue;
      }
      out[k] = s;
    }
    return ok ? out : z.NEVER;
  });

// ---------------------------------------------------------------------------------------------
// volumes: map {name: /target} or compose's list ["name:/target[:ro|rw]"]

const VOLUME_NAME = /^[a-z0-9][a-z0-9_.-]{0,31}$/;
const FORBIDDEN_TARGETS = ['/proc', '/sys', '/dev'];
const VOLUME_HINT = 'use a named volume: volumes: {data: /data} (or ["data:/data"]); host paths cannot be mounted';

function looksLikeHostPath(source: string): boolean {
  return source.startsWith('/') || source.startsWith('.') || source.startsWith('~') || source.includes('/') || source.includes('$') || source.includes('\\');
}

const volumesSchema = z.unknown().transform((v, ctx): VolumeMount[] => {
  if (v === undefined || v === null) return [];
  const entries: [unknown, unknown, string | undefined, Path][] = []; // [source, target, mode, path]
  let ok = true;
  if (isMap(v)) {
    for (const [k, val] of Object.entries(v)) entries.push([k, val, undefined, [k]]);
  } else if (Array.isArray(v)) {
    v.forEach((item, i) => {
      if (typeof item === 'string') {
        const bits = item.split(':');
        entries.push([bits[0], bits.length >= 2 ? bits[1] : undefined, bits.length >= 3 ? bits.slice(2).join(':') : undefined, [i]]);
      } else if (isMap(item) && item['type'] === 'bind') {
        ok = false;
        fail(ctx, 'volume_host_bind', `volumes[${i}] is a bind mount`, VOLUME_HINT, [i]);
      } else {
        ok = false;
        fail(ctx, 'volume_invalid', `volumes[${i}] must be "name:/path", got ${describe(item)}`, VOLUME_HINT, [i]);
      }
    });
  } else {
    return fail(ctx, 'type_invalid', `volumes must be a map of name: /path, got ${describe(v)}`, VOLUME_HINT);
  }
  const out: VolumeMount[] = [];
  const targets = new Set<string>();
  const names = new Set<string>();
  for (const [source, target, mode, path] of entries) {
    if (typeof source !== 'string' || source === '') {
      ok = false;
      fail(ctx, 'volume_invalid', `a volume needs a name, got ${describe(source)}`, VOLUME_HINT, path);
      continue;
    }
    if (looksLikeHostPath(source)) {
      ok = false;
      fail(ctx, 'volume_host_bind', `volume source ${JSON.stringify(source)} is a host path`, VOLUME_HINT, path);
      continue;
    }
    if (!VOLUME_NAME.test(source)) {
      ok = false;
      fail(ctx, 'volume_name_invalid', `volume name ${JSON.stringify(source)} is invalid`, 'volume names are 1-32 of a-z 0-9 _ . - starting with a letter or digit', path);
      continue;
    }
    if (typeof target !== 'string' || !target.startsWith('/') || target.split('/').includes('..') || target === '/' || target.includes(':')) {
      ok = false;
      fail(ctx, 'volume_target_invalid', `volume ${source} must mount at an absolute path inside the container, got ${describe(target)}`, VOLUME_HINT, path);
      continue;
    }
    const normTarget = target.replace(/\/+/g, '/').replace(/\/$/, '');
    if (FORBIDDEN_TARGETS.some((f) => normTarget === f || normTarget.startsWith(`${f}/`))) {
      ok = false;
      fail(ctx, 'volume_target_invalid', `volume ${source} cannot mount over ${normTarget}`, 'mount volumes at the data directory of the service, e.g. /data', path);
      continue;
    }
    if (mode !== undefined && mode !== 'ro' && mode !== 'rw') {
      ok = false;
      fail(ctx, 'volume_invalid', `volume ${source}: mode ${JSON.stringify(mode)} is not ro or rw`, VOLUME_HINT, path);
      continue;
    }
    if (targets.has(normTarget) || names.has(source)) {
      ok = false;
      fail(ctx, 'volume_target_duplicate', `volume ${source} at ${normTarget} repeats a name or a path of this service`, 'mount each volume once, each path once', path);
      continue;
    }
    targets.add(normTarget);
    names.add(source);
    out.push({ name: source, target: normTarget, readOnly: mode === 'ro' });
  }
  return ok ? out : z.NEVER;
});

// ---------------------------------------------------------------------------------------------
// cap_add

export function normalizeCap(c: string): string {
  return c.trim().toUpperCase().replace(/^CAP_/, '');
}

const capAddSchema = (policy: StackPolicy) =>
  z.unknown().transform((v, ctx): string[] => {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) return fail(ctx, 'type_invalid', `cap_add must be a list, got ${describe(v)}`, 'write cap_add: [IPC_LOCK]');
    const out = new Set<string>();
    let ok = true;
    v.forEach((c, i) => {
      const name = typeof c === 'string' ? normalizeCap(c) : null;
      if (name === null || !policy.capAdd.includes(name)) {
        ok = false;
        fail(
          ctx,
          'cap_not_allowed',
          `cap_add ${describe(c)} is not allowed`,
          `allowed: ${policy.capAdd.join(', ')} (${BASE_CAPS.join(', ')} are granted anyway); choose an image that runs without the others`,
          [i],
        );
      } else out.add(name);
    });
    return ok ? [...out].sort() : z.NEVER;
  });

// ---------------------------------------------------------------------------------------------
// durations and healthchecks

const DURATION_UNITS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };

/** Compose durations ("10s", "1m30s", "500ms") or a number of seconds, in ms; null if malformed. */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) : null;
  if (typeof v !== 'string' || !/^(\d+(\.\d+)?(h|ms|m|s|us))+$/.test(v)) return null;
  let ms = 0;
  for (const m of v.matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us)/g)) ms += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
  return Math.round(ms);
}

const durationSchema = (name: string, minMs: number, maxMs: number, defMs: number) =>
  z.unknown().transform((v, ctx): number => {
    if (v === undefined) return defMs;
    const ms = parseDuration(v);
    if (ms === null) return fail(ctx, 'duration_invalid', `${name} ${describe(v)} is not a duration`, `write a duration such as "5s" or "1m30s"`);
    if (ms < minMs || ms > maxMs) {
      return fail(ctx, 'value_out_of_range', `${name} ${describe(v)} is outside ${minMs / 1000}s..${maxMs / 1000}s`, `choose ${name} between ${minMs / 1000}s and ${maxMs / 1000}s`);
    }
    return ms;
  });

const HEALTH_TEST_HINT = 'write test: ["CMD", "prog", "arg"] or ["CMD-SHELL", "script"] or a string (run by /bin/sh)';

const healthTestSchema = z.unknown().transform((v, ctx): string[] | null | undefined => {
  if (v === undefined) return undefined;
  if (typeof v === 'string' && v.trim() !== '') return ['CMD-SHELL', v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) {
    const [kind, ...rest] = v as string[];
    if (kind === 'NONE' && rest.length === 0) return null;
    if (kind === 'CMD' && rest.length > 0 && rest[0] !== '') return v as string[];
    if (kind === 'CMD-SHELL' && rest.length === 1 && rest[0] !== '') return v as string[];
  }
  return fail(ctx, 'healthcheck_test_invalid', `healthcheck test ${describe(v)} is not a command`, HEALTH_TEST_HINT);
});

const retriesSchema = z.unknown().transform((v, ctx): number => {
  if (v === undefined) return DEFAULT_HEALTH_TIMING.retries;
  if (typeof v !== 'number' || !Number.isInteger(v)) return fail(ctx, 'type_invalid', `retries must be a whole number, got ${describe(v)}`, 'write retries: 10');
  if (v < 1 || v > 100) return fail(ctx, 'value_out_of_range', `retries ${v} is outside 1..100`, 'choose retries between 1 and 100');
  return v;
});

export const DEFAULT_HEALTH_TIMING = { intervalMs: 2000, timeoutMs: 5000, retries: 30, startPeriodMs: 0 } as const;

const healthcheckSchema = z.strictObject({
  test: healthTestSchema.optional(),
  interval: durationSchema('interval', 1000, 300_000, DEFAULT_HEALTH_TIMING.intervalMs).optional(),
  timeout: durationSchema('timeout', 1000, 300_000, DEFAULT_HEALTH_TIMING.timeoutMs).optional(),
  retries: retriesSchema.optional(),
  start_period: durationSchema('start_period', 0, 600_000, DEFAULT_HEALTH_TIMING.startPeriodMs).optional(),
  disable: z.boolean().optional(),
});

/** Default health tests by image name (the last path component, or its prefix before a '-'). */
export const DEFAULT_HEALTHCHECKS: Record<string, string[]> = {
  redis: ['CMD', 'redis-cli', 'ping'],
  valkey: ['CMD', 'valkey-cli', 'ping'],
  // TCP, not the socket: the official entrypoints initialise on a socket-only server first.
  postgres: ['CMD', 'pg_isready', '-q', '-h', '127.0.0.1'],
  mysql: ['CMD', 'mysqladmin', 'ping', '-h', '127.0.0.1', '--silent'],
  mariadb: ['CMD-SHELL', 'mariadb-admin ping -h 127.0.0.1 --silent || mysqladmin ping -h 127.0.0.1 --silent'],
};

export function defaultHealthTest(image: ImageRef): string[] | null {
  const last = image.repository.split('/').pop() ?? '';
  for (const [name, test] of Object.entries(DEFAULT_HEALTHCHECKS)) {
    if (last === name || last.startsWith(`${name}-`)) return test;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// resources

const SIZE = /^(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i;
const SIZE_MULT: Record<string, number> = { b: 1, k: 1024, kb: 1024, kib: 1024, m: MiB, mb: MiB, mib: MiB, g: GiB, gb: GiB, gib: GiB };

/** Docker's memory sizes (binary units: 512m, 1g, 1.5GiB) or a number of bytes; null if malformed. */
export function parseMemory(v: unknown): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : null;
  if (typeof v !== 'string') return null;
  const m = SIZE.exec(v.trim());
  if (!m) return null;
  return Math.floor(Number(m[1]) * (SIZE_MULT[(m[2] ?? 'b').toLowerCase()] as number));
}

const MIN_MEMORY = 32 * MiB;
const MIN_CPUS = 0.1;

const fmtBytes = (n: number) => (n % GiB === 0 ? `${n / GiB}g` : `${Math.round(n / MiB)}m`);

const resourcesSchema = (policy: StackPolicy) =>
  z
    .strictObject({
      cpus: z.unknown().optional().transform((v, ctx): number => {
        if (v === undefined) return policy.defaultCpus;
        const n = typeof v === 'string' && /^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v;
        if (typeof n !== 'number' || !Number.isFinite(n)) return fail(ctx, 'cpus_invalid', `cpus ${describe(v)} is not a number`, 'write cpus: 0.5 or cpus: 1');
        if (n < MIN_CPUS || n > policy.maxCpus) {
          return fail(ctx, 'cpus_out_of_range', `cpus ${n} is outside ${MIN_CPUS}..${policy.maxCpus}`, `choose cpus between ${MIN_CPUS} and ${policy.maxCpus}`);
        }
        return Math.round(n * 100) / 100;
      }),
      memory: z.unknown().optional().transform((v, ctx): number => {
        if (v === undefined) return policy.defaultMemoryBytes;
        const n = parseMemory(v);
        if (n === null) return fail(ctx, 'memory_invalid', `memory ${describe(v)} is not a size`, 'write memory: 512m or memory: 1g');
        if (n < MIN_MEMORY || n > policy.maxMemoryBytes) {
          return fail(
            ctx,
            'memory_out_of_range',
            `memory ${describe(v)} is outside ${fmtBytes(MIN_MEMORY)}..${fmtBytes(policy.maxMemoryBytes)}`,
            `choose memory between ${fmtBytes(MIN_MEMORY)} and ${fmtBytes(policy.maxMemoryBytes)} (a bare number is bytes; write 512m)`,
          );
        }
        return n;
      }),
    })
    .optional();

// ---------------------------------------------------------------------------------------------

const serviceSchema = (policy: StackPolicy) =>
  z.strictObject({
    image: imageSchema(policy),
    command: commandSchema.optional(),
    env: envSchema(policy).optional(),
    volumes: volumesSchema.optional(),
    healthcheck: healthcheckSchema.optional(),
    resources: resourcesSchema(policy),
    cap_add: capAddSchema(policy).optional(),
  });

const SERVICE_NAME = /^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

const manifestSchema = (policy: StackPolicy) =>
  z.strictObject({
    version: z.unknown().transform((v, ctx): 1 => {
      if (v === 1 || v === '1') return 1;
      if (v === undefined) return fail(ctx, 'key_missing', 'version is required', 'start the manifest with version: 1');
      return fail(ctx, 'version_unsupported', `version ${describe(v)} is not supported`, 'write version: 1');
    }),
    services: z.unknown().transform((v, ctx): ServiceSpec[] => {
      const hint = 'write services: as a map of service name to its settings, e.g. services: {redis: {image: "redis:7.4"}}';
      if (v === undefined) return fail(ctx, 'key_missing', 'services is required', hint);
      if (!isMap(v)) return fail(ctx, 'type_invalid', `services must be a map, got ${describe(v)}`, hint);
      const names = Object.keys(v);
      let ok = true;
      if (names.length === 0) return fail(ctx, 'services_empty', 'services is empty', hint);
      if (names.length > MAX_SERVICES) {
        ok = false;
        fail(ctx, 'services_too_many', `${names.length} services; at most ${MAX_SERVICES}`, `keep at most ${MAX_SERVICES} services`);
      }
      const schema = serviceSchema(policy);
      const out: ServiceSpec[] = [];
      for (const name of names) {
        if (!SERVICE_NAME.test(name)) {
          ok = false;
          fail(
            ctx,
            'service_name_invalid',
            `service name ${JSON.stringify(name)} is not DNS-safe`,
            `service names are 1-32 of a-z 0-9 -, starting with a letter, not ending with - (e.g. ${JSON.stringify(suggestName(name))})`,
            [name],
          );
        } else if (RESERVED_SERVICE_NAMES.includes(name)) {
          ok = false;
          fail(ctx, 'service_name_reserved', `service name ${JSON.stringify(name)} is reserved`, `choose another name (reserved: ${RESERVED_SERVICE_NAMES.join(', ')})`, [name]);
        }
        const raw = v[name];
        if (!isMap(raw)) {
          ok = false;
          fail(ctx, 'type_invalid', `service ${name} must be a map of settings, got ${describe(raw)}`, 'write at least image: <name>:<tag>', [name]);
          continue;
        }
        const r = schema.safeParse(raw);
        if (!r.success) {
          ok = false;
          // Re-home the service's issues under services.<name> (validateManifest maps the codes).
          for (const issue of r.error.issues) forward(ctx, issue, [name]);
          // The one rule across fields, checked here too so it comes in the same round.
          const image = typeof raw['image'] === 'string' ? parseImageRef(raw['image'], policy) : null;
          const hc = healthcheckSchema.optional().safeParse(raw['healthcheck']);
          if (image?.ok && hc.success) resolveHealthcheck(name, image.image, hc.data, ctx);
          continue;
        }
        const spec = finishService(name, r.data, ctx, policy);
        if (spec === null) ok = false;
        else out.push(spec);
      }
      // The total is counted over every service whose resources parse, even when others fail,
      // so this error comes in the same round as the rest.
      let total = 0;
      const resources = resourcesSchema(policy);
      for (const raw of Object.values(v)) {
        const r = isMap(raw) ? resources.safeParse(raw['resources']) : null;
        if (r?.success) total += r.data?.memory ?? policy.defaultMemoryBytes;
      }
      if (total > policy.maxTotalMemoryBytes) {
        ok = false;
        fail(
          ctx,
          'resources_total_exceeded',
          `the services ask for ${fmtBytes(total)} of memory in total; at most ${fmtBytes(policy.maxTotalMemoryBytes)}`,
          `lower resources.memory (default ${fmtBytes(policy.defaultMemoryBytes)} each) so the total stays within ${fmtBytes(policy.maxTotalMemoryBytes)}`,
        );
      }
      return ok ? out : z.NEVER;
    }),
  });

function suggestName(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^[^a-z]+/, '').replace(/-+$/, '').slice(0, 32);
  return s || 'svc';
}

/** Add the inner issue to the outer context with its path prefixed, keeping its params. */
function forward(ctx: Ctx, issue: z.core.$ZodIssue, prefix: Path): void {
  const path = [...prefix, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
  if (issue.code === 'unrecognized_keys') {
    ctx.addIssue({ code: 'custom', message: issue.message, path, params: { unrecognized: issue.keys } });
    return;
  }
  const params = issue.code === 'custom' ? (issue.params as Record<string, unknown> | undefined) : undefined;
  ctx.addIssue({ code: 'custom', message: issue.message, path, params: params ?? { zodCode: issue.code } });
}

type ParsedService = z.output<ReturnType<typeof serviceSchema>>;

type ParsedHealthcheck = z.output<typeof healthcheckSchema>;

/** The manifest's healthcheck, else the image's default, else none; undefined (and an issue) when a
 * healthcheck sets only timings for an image that has no default test. */
function resolveHealthcheck(name: string, image: ImageRef, hc: ParsedHealthcheck | undefined, ctx: Ctx): Healthcheck | null | undefined {
  const def = defaultHealthTest(image);
  if (hc === undefined) return def ? { test: def, ...DEFAULT_HEALTH_TIMING, source: 'default' } : null;
  if (hc.disable === true || hc.test === null) return null;
  const test = hc.test ?? def;
  if (!test) {
    fail(ctx, 'healthcheck_test_missing', `healthcheck of ${name} has no test and ${image.ref} has no default`, HEALTH_TEST_HINT, [name, 'healthcheck']);
    return undefined;
  }
  return {
    test,
    intervalMs: hc.interval ?? DEFAULT_HEALTH_TIMING.intervalMs,
    timeoutMs: hc.timeout ?? DEFAULT_HEALTH_TIMING.timeoutMs,
    retries: hc.retries ?? DEFAULT_HEALTH_TIMING.retries,
    startPeriodMs: hc.start_period ?? DEFAULT_HEALTH_TIMING.startPeriodMs,
    source: hc.test ? 'manifest' : 'default',
  };
}

function finishService(name: string, s: ParsedService, ctx: Ctx, policy: StackPolicy): ServiceSpec | null {
  const healthcheck = resolveHealthcheck(name, s.image, s.healthcheck, ctx);
  if (healthcheck === undefined) return null;
  return {
    name,
    image: s.image,
    command: s.command ?? null,
    env: s.env ?? {},
    volumes: s.volumes ?? [],
    healthcheck,
    cpus: s.resources?.cpus ?? policy.defaultCpus,
    memoryBytes: s.resources?.memory ?? policy.defaultMemoryBytes,
    capAdd: s.cap_add ?? [],
  };
}

// ---------------------------------------------------------------------------------------------
// From zod issues to ManifestErrors, in document order.

const SERVICE_KEYS = 'image, command, env, volumes, healthcheck, resources, cap_add';
const NESTED_KEYS: Record<string, string> = {
  healthcheck: 'test, interval, timeout, retries, start_period, disable',
  resources: 'cpus, memory',
};

/** `services.redis.volumes[0]`; keys that are not plain words are quoted: `services["a.b"]`. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(p)) out += out === '' ? p : `.${p}`;
    else out += `[${JSON.stringify(p)}]`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let cur = root;
  for (const p of path) {
    if (Array.isArray(cur) && typeof p === 'number') cur = cur[p];
    else if (isMap(cur) && typeof p === 'string' && Object.hasOwn(cur, p)) cur = cur[p];
    else return undefined;
  }
  return cur;
}

/** Pre-order positions of every path in the input: the document order of its keys and items. */
function positions(root: unknown): Map<string, number> {
  const pos = new Map<string, number>();
  const walk = (v: unknown, path: (string | number)[]) => {
    pos.set(formatPath(path), pos.size);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...path, i]));
    else if (isMap(v)) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
  };
  walk(root, []);
  return pos;
}

function unknownKeyError(parent: (string | number)[], key: string): ManifestError {
  const path = formatPath([...parent, key]);
  let hint: string;
  if (parent.length === 0) hint = TOP_KEY_HINTS[key] ?? 'a manifest has only version: 1 and services:';
  else if (parent.length === 2 && parent[0] === 'services') hint = KEY_HINTS[key] ?? `a service may set only ${SERVICE_KEYS}`;
  else {
    const last = parent[parent.length - 1];
    hint = `${String(last)} may set only ${NESTED_KEYS[String(last)] ?? 'the documented keys'}`;
  }
  if (parent.length === 2 && KEY_HINTS[key] !== undefined) hint = `${hint} (a service may set only ${SERVICE_KEYS})`;
  return { code: 'unknown_key', path, message: `${path}: unknown key ${JSON.stringify(key)}`, hint_for_agent: hint };
}

function toErrors(issue: z.core.$ZodIssue, input: unknown): ManifestError[] {
  const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
  const params = issue.code === 'custom' ? ((issue.params ?? {}) as Record<string, unknown>) : {};
  const unrecognized = issue.code === 'unrecognized_keys' ? issue.keys : (params['unrecognized'] as string[] | undefined);
  if (unrecognized) return unrecognized.map((k) => unknownKeyError(path, k));
  const at = formatPath(path);
  if (typeof params['code'] === 'string') {
    const c = params as unknown as CodedParams;
    return [{ code: c.code, path: at, message: at ? `${at}: ${issue.message}` : issue.message, hint_for_agent: c.hint }];
  }
  const zodCode = issue.code === 'custom' ? params['zodCode'] : issue.code;
  if (zodCode === 'invalid_type') {
    const missing = valueAt(input, path) === undefined;
    return [
      {
        code: missing ? 'key_missing' : 'type_invalid',
        path: at,
        message: `${at || 'manifest'}: ${missing ? 'is required' : issue.message}`,
        hint_for_agent: path.length === 0 ? 'the manifest is a YAML map: version: 1 and services:' : `fix the type of ${at}`,
      },
    ];
  }
  return [{ code: 'value_invalid', path: at, message: `${at || 'manifest'}: ${issue.message}`, hint_for_agent: `fix the value of ${at}` }];
}

/**
 * Validate a parsed manifest. On failure, every error at once, in document order (then in the
 * order the rules run), so the same draft always gives the same list.
 */
export function validateManifest(input: unknown, policy: StackPolicy = DEFAULT_POLICY): ValidationResult {
  const r = manifestSchema(policy).safeParse(input);
  if (r.success) return { ok: true, manifest: { version: 1, services: r.data.services } };
  const pos = positions(input);
  const rank = (issue: z.core.$ZodIssue): number => {
    const path = issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p));
    for (let i = path.length; i >= 0; i--) {
      const p = pos.get(formatPath(path.slice(0, i)));
      if (p !== undefined) return i === path.length ? p : p + 0.5;
    }
    return 0;
  };
  const ranked = r.error.issues.flatMap((issue, order) => {
    const base = rank(issue);
    return toErrors(issue, input).map((e) => ({ e, key: pos.get(e.path) ?? base, order }));
  });
  ranked.sort((a, b) => a.key - b.key || a.order - b.order);
  return { ok: false, errors: ranked.map((x) => x.e) };
}
