// The stack-controller's HTTP API, pure: which routes exist, which of them each listener serves,
// and the request schemas. Two listeners share one controller:
//   agent  TCP :7000 on vibebox-internal (alias stack-controller): what an agent container may do
//   host   a unix socket in the VM (/run/vibebox/stack/host.sock), reached only by the guest agent
//          for a supervisor exec: everything, plus apply/down/destroy.
// An agent asking for a host-only route gets 403 and a hint, never a 404 it could retry around.
import * as z from 'zod';

export const AGENT_PORT = 7000;
export const CONTROLLER_ALIAS = 'stack-controller';
export const CONTROLLER_URL = `http://${CONTROLLER_ALIAS}:${AGENT_PORT}`;

export type Listener = 'agent' | 'host';

export const AGENT_ROUTES = ['propose', 'status', 'info', 'wait', 'start', 'stop', 'reset', 'logs', 'diff'] as const;
export const HOST_ONLY_ROUTES = ['apply', 'down', 'destroy', 'proposal'] as const;
export type RouteName = (typeof AGENT_ROUTES)[number] | (typeof HOST_ONLY_ROUTES)[number];

const METHODS: Record<RouteName, 'GET' | 'POST'> = {
  propose: 'POST',
  status: 'GET',
  info: 'GET',
  wait: 'GET',
  start: 'POST',
  stop: 'POST',
  reset: 'POST',
  logs: 'GET',
  diff: 'GET',
  apply: 'POST',
  down: 'POST',
  destroy: 'POST',
  proposal: 'GET',
};
const WITH_SERVICE: ReadonlySet<RouteName> = new Set(['start', 'stop', 'reset', 'logs']);

export const ServiceName = z.string().regex(/^[a-z](?:[a-z0-9-]{0,30}[a-z0-9])?$/);

export const ApplyRequest = z.strictObject({
  dryRun: z.boolean().default(false),
  /** The proposal's hash the user saw in the diff: apply refuses if the proposal changed since. */
  expect: z.string().regex(/^[0-9a-f]{16}$/).optional(),
});
export type ApplyRequest = z.output<typeof ApplyRequest>;

/**
 * What a long operation (apply, down, destroy, start, stop, reset) answers: one JSON object a
 * line, its progress lines as they happen, then exactly one result. Read by the guest's host op
 * and by vibebox-stack in the agent container (progress-stream.ts).
 */
export const StackOutcome = z.object({
  ok: z.boolean().optional(),
  status: z.string().optional(),
  reason: z.string().optional(),
  services: z.array(z.string()).optional(),
  network: z.string().optional(),
  seconds: z.number().optional(),
  steps: z.number().optional(),
});
export type StackOutcome = z.infer<typeof StackOutcome>;
export const ProgressMessage = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('line'), line: z.string() }),
  z.strictObject({ type: z.literal('result'), result: StackOutcome }),
]);
export type ProgressMessage = z.infer<typeof ProgressMessage>;

export const LogsQuery = z.strictObject({
  follow: z.enum(['0', '1']).default('0'),
  tail: z.coerce.number().int().min(0).max(100_000).default(200),
});

export type Route =
  | { ok: true; name: RouteName; service: string | null }
  | { ok: false; status: 403 | 404 | 405; message: string };

/** The route of a request on a listener: /v1/<name>[/<service>]. */
export function route(listener: Listener, method: string, url: string): Route {
  const path = url.split('?')[0] ?? '';
  const m = /^\/v1\/([a-z]+)(?:\/([^/]+))?$/.exec(path);
  const name = m?.[1] as RouteName | undefined;
  if (!m || !name || !(name in METHODS)) return { ok: false, status: 404, message: `no such route ${path}` };
  if (listener === 'agent' && (HOST_ONLY_ROUTES as readonly string[]).includes(name)) {
    return { ok: false, status: 403, message: `${name} is host-only: ask the user to run \`vibebox stack ${name === 'proposal' ? 'diff' : name}\` on the host` };
  }
  if (method !== METHODS[name]) return { ok: false, status: 405, message: `${name} takes ${METHODS[name]}` };
  const service = m[2] ?? null;
  if (WITH_SERVICE.has(name)) {
    if (service === null || !ServiceName.safeParse(service).success) return { ok: false, status: 404, message: `${name} needs a service name` };
  } else if (service !== null) return { ok: false, status: 404, message: `no such route ${path}` };
  return { ok: true, name, service };
}

export function queryOf(url: string): Record<string, string> {
  const q = new URLSearchParams(url.split('?')[1] ?? '');
  const out: Record<string, string> = {};
  for (const [k, v] of q) out[k] = v;
  return out;
}

// ---- the host side's argv (vibebox stack … → ContainerOp 'stack' argv → guest) ----

const imageName = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,62}$/, 'an image name is lower-case letters, digits, . _ -');
const aptName = z.string().regex(/^[a-z0-9][a-z0-9+.-]*(=[A-Za-z0-9.+:~-]+)?$/, 'not a Debian package name');

export type HostCommand =
  | { cmd: 'diff' }
  | { cmd: 'apply'; dryRun: boolean; confirm: boolean }
  | { cmd: 'down' }
  | { cmd: 'destroy'; confirm: boolean }
  | { cmd: 'status' }
  | { cmd: 'logs'; service: string; follow: boolean }
  | { cmd: 'image'; name: string; apt: string[]; run: string[] };

export type ArgvResult<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * The stack op's argv as the guest receives it. `--confirm`: the guest shows the diff and reads
 * y/N from stdin before applying (so the proposal shown is the one applied).
 */
export function parseHostArgv(argv: readonly string[]): ArgvResult<HostCommand> {
  const [cmd, ...rest] = argv;
  const flags = (allowed: string[]) => {
    const bad = rest.find((a) => a.startsWith('-') && !allowed.includes(a));
    return bad;
  };
  const operands = rest.filter((a) => !a.startsWith('-'));
  switch (cmd) {
    case 'diff':
    case 'down':
    case 'status': {
      if (rest.length) return { ok: false, message: `stack ${cmd} takes no arguments` };
      return { ok: true, value: { cmd } };
    }
    case 'apply':
    case 'destroy': {
      const bad = flags(cmd === 'apply' ? ['--dry-run', '--confirm'] : ['--confirm']);
      if (bad || operands.length) return { ok: false, message: `stack ${cmd}: unexpected ${bad ?? operands[0]}` };
      return cmd === 'apply' ? { ok: true, value: { cmd, dryRun: rest.includes('--dry-run'), confirm: rest.includes('--confirm') } } : { ok: true, value: { cmd, confirm: rest.includes('--confirm') } };
    }
    case 'logs': {
      const bad = flags(['-f', '--follow']);
      if (bad || operands.length !== 1 || !ServiceName.safeParse(operands[0]).success) return { ok: false, message: 'stack logs takes one service name (and -f)' };
      return { ok: true, value: { cmd, service: operands[0]!, follow: rest.includes('-f') || rest.includes('--follow') } };
    }
    case 'image': {
      const [name, ...more] = rest;
      const n = imageName.safeParse(name);
      if (!n.success) return { ok: false, message: `stack image: ${name === undefined ? 'a name is required' : `"${name}": ${n.error.issues[0]?.message ?? ''}`}` };
      const apt: string[] = [];
      const run: string[] = [];
      let mode: 'apt' | null = null;
      for (let i = 0; i < more.length; i++) {
        const a = more[i]!;
        if (a === '--apt') mode = 'apt';
        else if (a === '--run') {
          const line = more[++i];
          if (!line) return { ok: false, message: 'stack image: --run needs a command' };
          run.push(line);
          mode = null;
        } else if (mode === 'apt') {
          const p = aptName.safeParse(a);
          if (!p.success) return { ok: false, message: `stack image: "${a}" is not a Debian package name` };
          apt.push(a);
        } else return { ok: false, message: `stack image: unexpected ${a}` };
      }
      if (apt.length === 0 && run.length === 0) return { ok: false, message: 'stack image: give packages (--apt redis-server) or --run "…"' };
      return { ok: true, value: { cmd, name: n.data, apt, run } };
    }
    default:
      return { ok: false, message: `unknown stack command "${cmd ?? ''}" (diff, apply, down, destroy, status, logs, image)` };
  }
}

/** `vibebox stack …` options → the op's argv (the inverse of parseHostArgv). */
export function hostArgv(c: HostCommand): string[] {
  switch (c.cmd) {
    case 'apply':
      return ['apply', ...(c.dryRun ? ['--dry-run'] : []), ...(c.confirm ? ['--confirm'] : [])];
    case 'destroy':
      return ['destroy', ...(c.confirm ? ['--confirm'] : [])];
    case 'logs':
      return ['logs', c.service, ...(c.follow ? ['-f'] : [])];
    case 'image':
      return ['image', c.name, ...(c.apt.length ? ['--apt', ...c.apt] : []), ...c.run.flatMap((r) => ['--run', r])];
    default:
      return [c.cmd];
  }
}

// ---- the agent's CLI (vibebox-stack, in the agent container) ----

export type AgentCommand =
  | { cmd: 'propose'; file: string }
  | { cmd: 'status' | 'info' | 'diff' }
  | { cmd: 'wait'; timeoutS: number }
  | { cmd: 'start' | 'stop' | 'reset'; service: string }
  | { cmd: 'logs'; service: string; follow: boolean };

export const DEFAULT_WAIT_S = 600;

export function parseAgentArgv(argv: readonly string[]): ArgvResult<AgentCommand> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'propose':
      if (rest.length !== 1 || rest[0]!.startsWith('-')) return { ok: false, message: 'usage: vibebox-stack propose <file.yml>' };
      return { ok: true, value: { cmd, file: rest[0]! } };
    case 'status':
    case 'info':
    case 'diff':
      if (rest.length) return { ok: false, message: `usage: vibebox-stack ${cmd}` };
      return { ok: true, value: { cmd } };
    case 'wait': {
      let timeoutS = DEFAULT_WAIT_S;
      for (let i = 0; i < rest.length; i++) {
        const a = rest[i]!;
        const v = a.startsWith('--timeout=') ? a.slice(10) : a === '--timeout' ? rest[++i] : undefined;
        const n = Number(v);
        if (v === undefined || !/^\d+$/.test(v) || n < 1 || n > 86_400) return { ok: false, message: 'usage: vibebox-stack wait [--timeout SECONDS]' };
        timeoutS = n;
      }
      return { ok: true, value: { cmd, timeoutS } };
    }
    case 'start':
    case 'stop':
    case 'reset':
      if (rest.length !== 1 || !ServiceName.safeParse(rest[0]).success) return { ok: false, message: `usage: vibebox-stack ${cmd} <service>` };
      return { ok: true, value: { cmd, service: rest[0]! } };
    case 'logs': {
      const ops = rest.filter((a) => a !== '-f' && a !== '--follow');
      if (ops.length !== 1 || !ServiceName.safeParse(ops[0]).success) return { ok: false, message: 'usage: vibebox-stack logs <service> [-f]' };
      return { ok: true, value: { cmd, service: ops[0]!, follow: ops.length !== rest.length } };
    }
    default:
      return { ok: false, message: 'usage: vibebox-stack propose <file>|status|info|wait [--timeout S]|start|stop|reset <svc>|logs <svc> [-f]|diff' };
  }
}

/** Default ports of well-known services, for `info` when the image declares none. */
export const KNOWN_PORTS: Record<string, number> = { redis: 6379, valkey: 6379, postgres: 5432, mysql: 3306, mariadb: 3306, mongo: 27017, neo4j: 7687, rabbitmq: 5672, memcached: 11211 };

export function portsFor(repository: string, exposed: readonly string[]): number[] {
  const ports = exposed.map((p) => Number(p.split('/')[0])).filter((n) => Number.isInteger(n) && n > 0);
  if (ports.length) return [...new Set(ports)].sort((a, b) => a - b);
  const last = repository.split('/').pop() ?? '';
  for (const [name, port] of Object.entries(KNOWN_PORTS)) if (last === name || last.startsWith(`${name}-`)) return [port];
  return [];
}
