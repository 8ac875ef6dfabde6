// `vibebox allow/deny` edit [network].entries on every valid TOML layout, keeping what the user wrote.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import TOML from '@iarna/toml';
import { editNetworkEntries } from '../../src/config/edit.js';
import { defaultConfigText } from '../../src/config/load.js';

const entriesOf = (t: string) => (TOML.parse(t) as { network?: { entries?: unknown } }).network?.entries;

describe('editNetworkEntries: every layout of [network]', () => {
  const layouts: [string, string, string[]][] = [
    ['spaces in the header', '# mine\n[ network ]  # the proxy\nmode = "allowlist"\nentries = ["a.com"] # list\n', ['# mine', '[ network ]  # the proxy', '# list']],
    ['quoted header', '["network"]\nentries = [\n  "a.com", # first\n]\n', ['["network"]', '# first']],
    ['inline table', '# top\nnetwork = { mode = "allowlist", entries = ["a.com"] } # inline\n[vm]\ncpus = 1\n', ['# top', '# inline', 'mode = "allowlist"']],
    ['inline table without entries', 'network = { mode = "allowlist" }\n', ['mode = "allowlist"']],
    ['empty inline table', 'network = {}\n', []],
    ['dotted keys', '# top\nnetwork.mode = "allowlist"\nnetwork.entries = ["a.com"] # dotted\n\n[vm]\ncpus = 1\n', ['# top', 'network.mode = "allowlist"', '# dotted']],
    ['dotted keys with spaces and quotes', 'network . "entries" = [ "a.com" ]\n', []],
    ['dotted mode only', 'network.mode = "allowlist" # m\n[vm]\ncpus = 1\n', ['network.mode = "allowlist" # m', '[vm]']],
    ['header with a multi-line string before it', '[image]\nrun = ["""\n[network]\nentries = 1\n"""]\n[network]\nentries = ["a.com"]\n', ['"""\n[network]\nentries = 1\n"""']],
    ['CRLF', '[network]\r\nentries = [\r\n  "a.com",\r\n]\r\n', []],
  ];
  for (const [name, text, keep] of layouts) {
    it(name, () => {
      const want = ['a.com', 'b.com'];
      const r = editNetworkEntries(text, want);
      assert.deepEqual(entriesOf(r.text), want, r.text);
      assert.equal(r.rewritten, false, `edited in place:\n${r.text}`);
      for (const k of keep) assert.ok(r.text.includes(k), `kept ${JSON.stringify(k)}:\n${r.text}`);
      const back = editNetworkEntries(r.text, []);
      assert.deepEqual(entriesOf(back.text), []);
      assert.equal(back.rewritten, false, back.text);
    });
  }
  it('a multi-line array is edited line by line: comments of kept entries stay, a dropped entry takes its comment', () => {
    const text = '[network]\nentries = [\n    "a.com", # for A\n    "b.com", # for B\n    "c.com" # for C\n]\n';
    const r = editNetworkEntries(text, ['a.com', 'c.com', 'd.com']);
    assert.equal(r.text, '[network]\nentries = [\n    "a.com", # for A\n    "c.com", # for C\n    "d.com",\n]\n');
  });
  it('the default file keeps every line but the edited one', () => {
    const d = defaultConfigText();
    const r = editNetworkEntries(d, [...(entriesOf(d) as string[]), 'x.org']);
    assert.equal(r.text, d.replace('  ".githubusercontent.com:443",\n', '  ".githubusercontent.com:443",\n  "x.org",\n'));
  });
});
