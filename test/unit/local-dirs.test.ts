// [workspace] local: the name rules (shared by config and agent), the schema, and :explain.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localDirOrder, localDirProblem } from '../../guest/local-dirs.js';
import { parseConfigText, resolveConfig } from '../../src/config/load.js';
import { VibeboxError } from '../../src/errors.js';
import { explain, explainText } from '../../src/explain.js';

describe('localDirProblem (pure)', () => {
  it('takes relative paths under the project', () => {
    for (const ok of ['node_modules', '.venv', 'target', 'web/node_modules', 'node_modules/']) assert.equal(localDirProblem(ok), null, ok);
  });
  it('refuses absolute, empty, "..", "." and the walls (.git, .vibebox)', () => {
    for (const bad of ['', '/node_modules', '..', '../x', 'a/../b', '.', './x', 'a//b', '.git', 'x/.git', '.git/hooks', '.vibebox', 'a/.vibebox/b', 'a\\b'])
      assert.notEqual(localDirProblem(bad), null, bad);
  });
  it('orders parents before children and drops duplicates', () => {
    assert.deepEqual(localDirOrder(['a/b', 'node_modules/', 'a', 'node_modules']), ['a', 'node_modules', 'a/b']);
  });
});

describe('[workspace] local in vibebox.toml', () => {
  it('is read', () => {
    const c = parseConfigText('[workspace]\nlocal = ["node_modules", ".venv", "target"]\n');
    assert.deepEqual(c.workspace?.local, ['node_modules', '.venv', 'target']);
  });
  it('a bad name is E_CONFIG_INVALID naming the key', () => {
    for (const bad of ['../x', '/abs', '.git', '.vibebox/state']) {
      let caught: unknown;
      try {
        parseConfigText(`[workspace]\nlocal = [${JSON.stringify(bad)}]\n`);
      } catch (e) {
        caught = e;
      }
      assert.ok(caught instanceof VibeboxError, bad);
      assert.equal(caught.code, 'E_CONFIG_INVALID');
      assert.match(caught.toLine(), /workspace\.local/);
    }
  });
  it('explain lists them and says the host does not see them', () => {
    const rc = resolveConfig(parseConfigText('[workspace]\nlocal = ["node_modules", "target"]\n'), '/tmp/p', { checkPaths: false });
    const e = explain('/tmp/p', null, rc);
    assert.deepEqual(e.local, ['/workspace/node_modules', '/workspace/target']);
    const t = explainText(e);
    assert.match(t, /\/workspace\/node_modules\n/);
    assert.match(t, /the host does not see them/);
  });
  it('explain says nothing of them when there are none', () => {
    const rc = resolveConfig(parseConfigText(''), '/tmp/p', { checkPaths: false });
    assert.deepEqual(explain('/tmp/p', null, rc).local, []);
    assert.doesNotMatch(explainText(explain('/tmp/p', null, rc)), /local to the VM/);
  });
});
