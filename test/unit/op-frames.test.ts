// Container ops as typed frames of the guest protocol: the schemas both ends validate with, and
// what the host prints from them. The guest is the attacker here: wrong types, oversized text,
// unknown fields and kinds are refused at receipt (by zod on the supervisor, by the JSON Schema
// check on the client); text that passes is printed through shown().
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AgentMessage, HostMessage, MAX_OP_LINE, MAX_OP_TEXT, OpEvent, OpFailure, OpRequest, OpResult, readControl, type OpResult as OpResultT } from '../../guest/protocol.js';
import { ClientMessage, SupervisorMessage } from '../../src/supervisor/client-protocol.js';
import { supervisorMessageJsonSchema } from '../../src/supervisor/protocol-json.js';
import { conforms } from '../../src/supervisor/json-check.js';
import { LineEvents, failureOf, lineEvents } from '../../guest/containers/op-requests.js';
import { VibeboxError } from '../../guest/errors.js';
import { agentsText, reviewText } from '../../src/cli/op-render.js';
import { renderStatus } from '../../guest/stack/status-text.js';
import { stackApplyWith, stackDiffWith, stackDownWith, type StackIo } from '../../src/cli/stack.js';

const RAW_IN_LINE = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;
const noRaw = (text: string) => {
  for (const line of text.split('\n')) assert.doesNotMatch(line, RAW_IN_LINE, JSON.stringify(line));
};
const ERASE = '\x1b[1A\x1b[2K\r';
const spec = { image: { apt: [], npm: [], run: [] } };
const HASH = '0123456789abcdef';

describe('op requests (host → guest)', () => {
  it('each op is its own shape; unknown ops, extra fields and wrong types are refused', () => {
    for (const r of [{ op: 'agents' }, { op: 'update', agent: 'claude' }, { op: 'changes' }, { op: 'commit' }, { op: 'reset' }, { op: 'rebuild' }, { op: 'kit_ls' }, { op: 'kit_stop', name: 'k' }, { op: 'stack_plan' }, { op: 'stack_apply', expect: HASH, dryRun: false }, { op: 'stack_status' }, { op: 'stack_down' }, { op: 'stack_destroy' }, { op: 'stack_image', name: 'redis', apt: ['redis-server'], run: [] }]) {
      assert.ok(OpRequest.safeParse(r).success, JSON.stringify(r));
      assert.ok(HostMessage.safeParse({ type: 'op', id: 3, request: r, spec, env: {} }).success, JSON.stringify(r));
      assert.ok(ClientMessage.safeParse({ type: 'op', request: r }).success, JSON.stringify(r));
    }
    assert.ok(!OpRequest.safeParse({ op: 'run' }).success, 'run stays an exec');
    assert.ok(!OpRequest.safeParse({ op: 'agents', argv: ['--json'] }).success);
    assert.ok(!OpRequest.safeParse({ op: 'update' }).success, 'update names its agent');
    assert.ok(!OpRequest.safeParse({ op: 'update', agent: 'Claude; rm -rf /' }).success);
    assert.ok(!OpRequest.safeParse({ op: 'stack_image', name: '../x', apt: [], run: [] }).success);
    assert.ok(!OpRequest.safeParse({ op: 'stack_image', name: 'x', apt: ['$(evil)'], run: [] }).success);
    assert.ok(!HostMessage.safeParse({ type: 'op', id: 0, request: { op: 'agents' }, spec, env: {} }).success);
  });

  it('apply carries the identity of the plan shown: without it, or with anything but a plan hash, it is refused', () => {
    assert.ok(!OpRequest.safeParse({ op: 'stack_apply', dryRun: false }).success);
    assert.ok(!OpRequest.safeParse({ op: 'stack_apply', expect: 'latest', dryRun: false }).success);
    assert.ok(!OpRequest.safeParse({ op: 'stack_apply', expect: HASH.toUpperCase(), dryRun: false }).success);
    assert.ok(!OpRequest.safeParse({ op: 'stack_apply', expect: HASH, dryRun: 'no' }).success);
  });
});

describe('op events and results (guest → host): hostile frames refused', () => {
  const json = supervisorMessageJsonSchema();
  /** Accepted by the supervisor (zod, on the agent channel) and by the client (JSON Schema), or by neither. */
  const both = (result: unknown): boolean => {
    const agent = AgentMessage.safeParse({ type: 'op_result', id: 1, result }).success;
    const client = conforms(json, { type: 'op_result', result });
    assert.equal(client, agent, `the two ends disagree on ${JSON.stringify(result).slice(0, 200)}`);
    return agent;
  };

  it('a result of the right kind passes both ends', () => {
    assert.ok(both({ kind: 'done' }));
    assert.ok(both({ kind: 'agents', rows: [{ name: 'claude', package: '@anthropic-ai/claude-code', version: '2.0.1' }, { name: 'codex', package: '@openai/codex', version: null }] }));
    assert.ok(both({ kind: 'stack_plan', proposed: true, hash: HASH, diff: '+ redis (new)\n', empty: false }));
    assert.ok(both({ kind: 'stack_apply', status: 'rolled_back', reason: 'broken is unhealthy' }));
    assert.ok(both({ kind: 'stack_image', tag: 'local/redis:0123456789abcdef' }));
  });

  it('wrong types, unknown kinds and extra fields are refused', () => {
    assert.ok(!both({ kind: 'done', exitCode: 0 }));
    assert.ok(!both({ kind: 'shell', command: 'rm -rf ~' }));
    assert.ok(!both({ kind: 'agents', rows: 'claude' }));
    assert.ok(!both({ kind: 'agents', rows: [{ name: 'claude', package: 'x', version: 2 }] }));
    assert.ok(!both({ kind: 'agents', rows: [{ name: '../../x', package: 'x', version: null }] }));
    assert.ok(!both({ kind: 'stack_plan', proposed: true, hash: 'not-a-hash', diff: '', empty: false }));
    assert.ok(!both({ kind: 'stack_apply', status: 'applied; also run this', reason: '' }));
    assert.ok(!both({ kind: 'stack_apply', status: 'applied', seconds: -1 }));
    assert.ok(!both({ kind: 'stack_image', tag: 'docker.io/evil:latest' }));
    assert.ok(!AgentMessage.safeParse({ type: 'op_event', id: 1, event: { kind: 'exec', argv: ['sh'] } }).success);
    assert.ok(!AgentMessage.safeParse({ type: 'op_event', id: 1, event: { kind: 'line', line: 42 } }).success);
    assert.ok(!AgentMessage.safeParse({ type: 'op_error', id: 1, error: { code: 'E_X', message: 'm', exitCode: 0 } }).success, 'a failure never exits 0');
    assert.ok(!AgentMessage.safeParse({ type: 'op_error', id: 1, error: { code: 'rm -rf', message: 'm', exitCode: 1 } }).success);
  });

  it('oversized text, lines and lists are refused at receipt', () => {
    assert.ok(!both({ kind: 'changes', text: 'x'.repeat(MAX_OP_TEXT + 1) }));
    assert.ok(both({ kind: 'changes', text: 'x'.repeat(1000) }));
    assert.ok(!both({ kind: 'agents', rows: Array.from({ length: 65 }, () => ({ name: 'a', package: 'p', version: null })) }));
    assert.ok(!both({ kind: 'kits', kits: [{ name: 'k'.repeat(1025), state: 'running' }] }));
    assert.ok(!OpEvent.safeParse({ kind: 'line', line: 'x'.repeat(MAX_OP_LINE + 1) }).success);
    assert.ok(!conforms(json, { type: 'op_event', event: { kind: 'line', line: 'x'.repeat(MAX_OP_LINE + 1) } }));
    assert.ok(!OpFailure.safeParse({ code: 'E_X', message: 'x'.repeat(MAX_OP_LINE + 1), exitCode: 1 }).success);
    // The frame as the supervisor reads it off the channel: the same verdict.
    const r = readControl(Buffer.from(JSON.stringify({ type: 'op_event', id: 1, event: { kind: 'line', line: 'ok' } })), AgentMessage);
    assert.ok(r.ok);
    assert.equal(readControl(Buffer.from(JSON.stringify({ type: 'op_result', id: 1, result: { kind: 'changes', text: 'y'.repeat(MAX_OP_TEXT + 1) } })), AgentMessage).ok, false);
  });

  it('the guest splits its own progress to fit: long lines in pieces, a byte stream at line ends', () => {
    const ev = lineEvents(`a\n${'b'.repeat(MAX_OP_LINE * 2 + 5)}\n`);
    assert.deepEqual(ev.map((e) => e.line.length), [1, MAX_OP_LINE, MAX_OP_LINE, 5]);
    for (const e of ev) assert.ok(OpEvent.safeParse(e).success);
    const got: string[] = [];
    const s = new LineEvents((e) => got.push(e.line));
    s.push(Buffer.from('npm: fetch'));
    s.push(Buffer.from('ing\nadded 3 pack'));
    s.push(Buffer.from([0xe2, 0x82]));
    s.push(Buffer.from([0xac, 0x0a]));
    s.end();
    assert.deepEqual(got, ['npm: fetching', 'added 3 pack€']);
  });

  it('a failure keeps its code, hint and exit code; anything else is a failure (exit 1), cut to fit', () => {
    assert.deepEqual(failureOf(new VibeboxError('E_USAGE', 'bad', 'do this')), { code: 'E_USAGE', message: 'bad', hint: 'do this', exitCode: 2 });
    const f = failureOf(new Error('x'.repeat(MAX_OP_LINE * 3)));
    assert.equal(f.exitCode, 1);
    assert.ok(OpFailure.safeParse(f).success);
  });
});

describe('what the host prints from op results: escaped', () => {
  it('agents (table and --json), a changes summary, a diff, a status', () => {
    const rows = [{ name: 'claude', package: 'p', version: `1.0${ERASE}\u202e` }];
    noRaw(agentsText(rows, false));
    const j = agentsText(rows, true);
    noRaw(j);
    assert.deepEqual(JSON.parse(j), rows);
    const text = `vibebox: the container has uncommitted changes:\n  + /usr/bin/x${ERASE}fake\n`;
    const shownText = reviewText(text);
    noRaw(shownText);
    assert.equal(shownText.split('\n').length, text.split('\n').length, 'newlines are kept, nothing else');
    noRaw(renderStatus({ live: true, down: false, services: [{ name: `db${ERASE}`, image: 'i\x07', state: 'running', health: null }], last_apply: { status: 'applied\x9b', reason: '', time: 't' }, proposed: { time: 't', hash: `h${ERASE}` } }));
  });

  it('stack diff, apply outcomes and a failed down: every guest string escaped', async () => {
    const outs: string[] = [];
    const io = (answers: OpResultT[]): StackIo => ({
      op: async () => answers.shift()!,
      confirm: async () => true,
      out: (t) => void outs.push(t),
      err: (t) => void outs.push(t),
    });
    await stackDiffWith(io([{ kind: 'stack_plan', proposed: true, hash: HASH, diff: `+ db${ERASE}(new)\n`, empty: false }]));
    await stackApplyWith(io([{ kind: 'stack_plan', proposed: true, hash: HASH, diff: '+ db\x1b]0;t\x07\n', empty: false }, { kind: 'stack_apply', status: 'applied', services: [`db${ERASE}`], network: 'n\u202e', seconds: 1 }]), { dryRun: false, confirm: false });
    await stackApplyWith(io([{ kind: 'stack_plan', proposed: true, hash: HASH, diff: '', empty: false }, { kind: 'stack_apply', status: 'rolled_back', reason: `db is unhealthy${ERASE}applied: all` }]), { dryRun: false, confirm: false });
    await stackDownWith(io([{ kind: 'stack_changed', ok: false, reason: `x${ERASE}` }]), 'down', false);
    assert.ok(outs.length >= 6);
    for (const o of outs) noRaw(o);
  });

  it('the client refuses a supervisor message that smuggles a field the protocol lacks', () => {
    assert.ok(SupervisorMessage.safeParse({ type: 'op_result', result: { kind: 'done' } }).success);
    assert.ok(!SupervisorMessage.safeParse({ type: 'op_result', result: { kind: 'done' }, print: '\x1b]52;c;' }).success);
    assert.ok(!conforms(supervisorMessageJsonSchema(), { type: 'op_event', event: { kind: 'line', line: 'x', raw: true } }));
    assert.ok(OpResult.safeParse({ kind: 'kit_stopped', found: false }).success);
  });
});
