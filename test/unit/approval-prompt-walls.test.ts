// The approval prompt against hostile text: a vibebox.toml (which the guest can write) must not be
// able to move the cursor, erase a line or fake a line of the y/N prompt. Two walls: control and
// reordering characters are refused when vibebox.toml is read (exit 2, the key named), and
// whatever still reaches a prompt line (a path a symlink resolves to) is shown escaped.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkApproval } from '../../src/approval/check.js';
import { widenings, type Grant } from '../../src/approval/diff.js';
import { networkWidenings } from '../../src/approval/network-diff.js';
import { parseConfigText } from '../../src/config/load.js';
import { VibeboxError } from '../../src/errors.js';

const RAW = /[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200b-\u200f]/;
// Cursor up one line, erase it, back to column 0: the line above (the `+ mount`) is gone.
const ERASE_ABOVE = '\\u001b[1A\\u001b[2K\\r';

describe('approval prompt: the reviewer attack (a run line erasing the rw mount above it)', () => {
  let tmp = '';
  let project = '';
  let bashrc = '';
  let saved: string | undefined;
  before(() => {
    tmp = realpathSync(mkdtempSync(join(tmpdir(), 'vb-prompt-')));
    project = join(tmp, 'proj');
    mkdirSync(project);
    bashrc = join(tmp, 'userhome', '.bashrc');
    mkdirSync(join(tmp, 'userhome'));
    writeFileSync(bashrc, '# rc\n');
    saved = process.env['VIBEBOX_HOME'];
    process.env['VIBEBOX_HOME'] = join(tmp, 'vbhome');
  });
  after(() => {
    if (saved === undefined) delete process.env['VIBEBOX_HOME'];
    else process.env['VIBEBOX_HOME'] = saved;
    rmSync(tmp, { recursive: true, force: true });
  });
  const toml = (text: string) => writeFileSync(join(project, 'vibebox.toml'), text);

  /** checkApproval as on a terminal: the prompt text captured, the answer `y`. */
  async function prompted(id: string): Promise<{ prompt: string | null; error: unknown }> {
    let prompt: string | null = null;
    try {
      await checkApproval(project, id, {
        interactive: true,
        ask: async (text, question) => {
          prompt = `${text}${question} [y/N] `;
          return true;
        },
      });
    } catch (e) {
      return { prompt, error: e };
    }
    return { prompt, error: null };
  }

  it('the crafted vibebox.toml is refused before any prompt: image.run[0] named, exit 2', async () => {
    toml(`[[mounts]]\nhost = ${JSON.stringify(bashrc)}\nguest = "/home/vibe/.bashrc"\nmode = "rw"\n\n[image]\nrun = ["${ERASE_ABOVE}+ image.run: apt-get clean"]\n`);
    const r = await prompted('01900000-0000-7000-8000-00000000e001');
    assert.equal(r.prompt, null, 'no prompt was shown');
    assert.ok(r.error instanceof VibeboxError, String(r.error));
    assert.equal(r.error.code, 'E_CONFIG_INVALID');
    assert.equal(r.error.exitCode, 2);
    assert.match(r.error.message, /image\.run\[0\] contains a control character \(\\e\)/);
    assert.doesNotMatch(r.error.toLine(), RAW);
  });

  it('a path that reaches the prompt through a symlink is shown escaped, and the rw mount line is there', async () => {
    // The toml itself is clean; the escape sits in the name of a directory the symlink resolves to.
    const hostile = join(project, '\x1b[1A\x1b[2K\r+ image.run: apt-get clean');
    mkdirSync(hostile);
    symlinkSync(hostile, join(project, 'data'));
    toml(`[[mounts]]\nhost = ${JSON.stringify(bashrc)}\nguest = "/home/vibe/.bashrc"\nmode = "rw"\n\n[[mounts]]\nhost = "data"\nguest = "/mnt/data"\n`);
    const r = await prompted('01900000-0000-7000-8000-00000000e002');
    assert.equal(r.error, null);
    assert.ok(r.prompt !== null);
    const prompt: string = r.prompt;
    for (const line of prompt.split('\n')) assert.doesNotMatch(line, RAW, line);
    assert.ok(prompt.includes(`+ mount ${bashrc} → /home/vibe/.bashrc (rw)`), prompt);
    assert.ok(prompt.includes('\\e[1A\\e[2K\\r+ image.run: apt-get clean'), prompt);
    assert.match(prompt, /Apply these changes\?/);
    // the line right above the question, which stays on screen however long the list
    assert.match(prompt, /\n  in all: 2 mounts \(1 writable\)\nApply these changes\? \[y\/N\] $/);
  });
});

describe('approval lines: every string from the project is escaped (widenings)', () => {
  const base: Grant = { network: { mode: 'allowlist', entries: [] }, mounts: [] };
  it('mount host and guest, image apt/npm/run, network entries, blocklist mode', () => {
    const wanted: Grant = {
      network: { mode: 'allowlist', entries: ['a.com'] },
      mounts: [{ host: '/h/\x1b[2Kx', guest: '/mnt/\ry', mode: 'rw' }],
      image: { apt: ['jq\x1b[1A'], npm: ['x\u202e'], run: ['echo\rhi', 'a\x9b2Kb', 'tab\there'] },
    };
    const lines = widenings(base, wanted);
    assert.equal(lines.length, 7);
    for (const l of lines) assert.doesNotMatch(l, RAW, l);
    assert.ok(lines.includes('+ mount /h/\\e[2Kx → /mnt/\\ry (rw)'), lines.join('\n'));
    assert.ok(lines.includes('+ image.run: echo\\rhi'));
    assert.ok(lines.includes('+ image.run: a\\x9b2Kb'));
    const ro: Grant = { ...base, mounts: [{ host: '/h/\x1b[2Kx', guest: '/mnt/\ry', mode: 'ro' }] };
    assert.deepEqual(widenings(ro, { ...base, mounts: [{ host: '/h/\x1b[2Kx', guest: '/mnt/\ry', mode: 'rw' }] }), ['+ mount /h/\\e[2Kx → /mnt/\\ry becomes writable (rw)']);
  });
  it('network lines: an IDN entry shows the name the proxy matches (a Cyrillic а is not apple.com)', () => {
    const lines = networkWidenings({ mode: 'allowlist', entries: [] }, { mode: 'allowlist', entries: ['\u0430pple.com:443', '.b\u00fccher.example', 'plain.example'] });
    assert.deepEqual(lines, ['+ network: allow \u0430pple.com:443 (xn--pple-43d.com:443)', '+ network: allow .b\u00fccher.example (.xn--bcher-kva.example)', '+ network: allow plain.example']);
  });
  it('network lines: an entry the proxy accepts (IDN) and a blocklist listing', () => {
    const block = networkWidenings({ mode: 'allowlist', entries: [] }, { mode: 'blocklist', entries: ['x\x1b[2K.com'] });
    for (const l of block) assert.doesNotMatch(l, RAW, l);
    assert.match(block[0]!, /x\\e\[2K\.com/);
  });
});

describe('vibebox.toml: control and reordering characters are refused in every string, the key named', () => {
  const cases: [string, string, RegExp][] = [
    ['mount host with ESC', '[[mounts]]\nhost = "/tmp/\\u001b[2K"\nguest = "/mnt/x"\n', /^vibebox\.toml: mounts\[0\]\.host contains a control character \(\\e\)/],
    ['mount guest with CR', '[[mounts]]\nhost = "/tmp"\nguest = "/mnt/x\\r"\n', /mounts\[0\]\.guest contains a control character \(\\r\)/],
    ['apt with ESC', '[image]\napt = ["jq", "jq\\u001b[1A"]\n', /image\.apt\[1\] contains a control character \(\\e\)/],
    ['npm with BEL', '[image]\nnpm = ["x\\u0007"]\n', /image\.npm\[0\] contains a control character \(\\x07\)/],
    ['run with a newline', '[image]\nrun = ["true\\n+ image.run: apt-get clean"]\n', /image\.run\[0\] contains a control character \(\\n\)/],
    ['run with a C1 CSI', '[image]\nrun = ["a\\u009b2Kb"]\n', /image\.run\[0\] contains a control character \(\\x9b\)/],
    ['run with DEL', '[image]\nrun = ["a\\u007fb"]\n', /image\.run\[0\] contains a control character \(\\x7f\)/],
    ['run with a bidi override', '[image]\nrun = ["echo \\u202eabc"]\n', /image\.run\[0\] contains an invisible or reordering character \(\\u202e\)/],
    ['run with a zero-width space', '[image]\nrun = ["rm\\u200b -rf"]\n', /image\.run\[0\] contains an invisible or reordering character \(\\u200b\)/],
    ['network entry', '[network]\nentries = ["a.com", "b.com\\u001b[2K"]\n', /network\.entries\[1\] contains a control character \(\\e\)/],
    ['workspace local', '[workspace]\nlocal = ["node_modules\\r"]\n', /workspace\.local\[0\] contains a control character \(\\r\)/],
    ['vm image', '[vm]\nimage = "default\\u001b"\n', /vm\.image contains a control character \(\\e\)/],
    ['a size', '[vm]\nmemory = "2GiB\\u001b[2K"\n', /vm\.memory contains a control character \(\\e\)/],
    ['a key name', '[vm]\n"cpus\\u001b[2K" = 2\n', /vm\.cpus\\e\[2K: the key contains a control character \(\\e\)/],
    ['a table name', '["x\\u001b"]\na = 1\n', /x\\e: the key contains a control character \(\\e\)/],
  ];
  for (const [what, text, re] of cases) {
    it(what, () => {
      assert.throws(
        () => parseConfigText(text),
        (e: unknown) => {
          assert.ok(e instanceof VibeboxError);
          assert.equal(e.code, 'E_CONFIG_INVALID');
          assert.equal(e.exitCode, 2);
          assert.match(e.message, re);
          assert.doesNotMatch(e.toLine(), RAW, 'the error itself prints nothing raw');
          assert.ok(!e.toLine().includes('\n'), 'one line');
          return true;
        },
      );
    });
  }
  it('plain text, Unicode and backslashes are still fine', () => {
    const c = parseConfigText('[image]\nrun = ["echo héllo ✓ \\\\e"]\n[[mounts]]\nhost = "/tmp/dir with spaces"\nguest = "/mnt/x"\n');
    assert.deepEqual(c.image.run, ['echo héllo ✓ \\e']);
  });
  it('a TOML syntax error quoting a control character prints it escaped', () => {
    assert.throws(
      () => parseConfigText('[vm]\ncpus = 2\x1b[2K\n'),
      (e: unknown) => e instanceof VibeboxError && e.code === 'E_CONFIG_PARSE' && !RAW.test(e.toLine()),
    );
  });
});

describe('approval prompt: flooding variant (the mount line scrolled away above many run lines)', () => {
  it('the line right above the question counts every kind of widening, writable mounts named', async () => {
    const { wideningSummary } = await import('../../src/approval/diff.js');
    const approved: Grant = { network: { mode: 'allowlist', entries: [] }, mounts: [{ host: '/p', guest: '/workspace', mode: 'rw' }, { host: '/h/ro', guest: '/mnt/ro', mode: 'ro' }] };
    const wanted: Grant = {
      network: { mode: 'allowlist', entries: ['evil.example'] },
      mounts: [{ host: '/p', guest: '/workspace', mode: 'rw' }, { host: '/h/ro', guest: '/mnt/ro', mode: 'rw' }, { host: '/home/u/.bashrc', guest: '/home/vibe/.bashrc', mode: 'rw' }, { host: '/h/x (rw)', guest: '/mnt/x', mode: 'ro' }],
      image: { apt: [], npm: [], run: Array.from({ length: 300 }, (_, i) => `echo ${i}`) },
      ports: [{ host: 2222, guest: 22 }],
    };
    assert.equal(wideningSummary(approved, wanted), '3 mounts (2 writable), 1 network destination, 300 image lines, 1 port forward');
  });
});
