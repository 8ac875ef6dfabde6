// [network] entries in vibebox.toml are validated exactly as `vibebox allow` validates its
// argument (one function, proxy/policy.ts validateEntry): an entry the proxy would skip is refused
// when the file is read (exit 2, the key named), instead of silently matching nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/load.js';
import { VibeboxError } from '../../src/errors.js';
import { parseEntry, validateEntry } from '../../proxy/policy.js';

const toml = (entries: string[]) => `[network]\nentries = [${entries.map((e) => JSON.stringify(e)).join(', ')}]\n`;

function refused(entry: string, re: RegExp): void {
  assert.throws(
    () => parseConfigText(toml(['ok.example.com', entry])),
    (e: unknown) => {
      assert.ok(e instanceof VibeboxError, String(e));
      assert.equal(e.code, 'E_CONFIG_INVALID');
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /^vibebox\.toml: network\.entries\[1\]: /);
      assert.match(e.message, re);
      assert.ok(!e.toLine().includes('\n'));
      return true;
    },
    entry,
  );
  assert.notEqual(validateEntry(entry), null, `vibebox allow refuses ${JSON.stringify(entry)} too`);
}

describe('vibebox.toml [network] entries: what the proxy would skip is refused', () => {
  const bad: [string, RegExp][] = [
    ['-bad.com', /not a valid host name/],
    ['a..b.com', /not a valid host name/],
    ['host:99999', /port must be a number from 1 to 65535/],
    ['host:0', /port must be a number from 1 to 65535/],
    ['999.1.1.1', /not a valid host name or IP address/],
    // variants
    ['host:65536', /port/],
    ['host:', /port/],
    ['host:-1', /port/],
    ['bad-.com', /not a valid host name/],
    ['a.com..', /not a valid host name/],
    ['256.1.1.1', /not a valid/],
    ['1.2.3.4.5', /not a valid/],
    ['.1.2.3.4', /leading dot needs a domain name/],
    ['..a.com', /./],
    ['https://a.com', /URL/],
    ['a.com/path', /paths/],
    ['*.a.com', /leading dot/],
    ['a b.com', /not a valid/],
    // IPv4 in a spelling other than a plain dotted quad: 010.1.1.1 is 8.1.1.1 to the URL
    // standard, 1.2.3 is 1.2.0.3: the reviewer would read another address than the proxy matches
    ['010.1.1.1', /write the IPv4 address as four decimal numbers.*8\.1\.1\.1/],
    ['1.2.3', /1\.2\.0\.3/],
    ['0x7f.1', /127\.0\.0\.1/],
    ['3232235777', /192\.168\.1\.1/],
    ['8.8.8.010', /8\.8\.8\.8/],
    ['010.1.1.1:443', /8\.1\.1\.1/],
  ];
  for (const [e, re] of bad) it(JSON.stringify(e), () => refused(e, re));

  it('the same entries in the config and in `vibebox allow`: one validator', () => {
    for (const e of ['example.com', 'EXAMPLE.com', 'example.com.', '.example.com:443', 'bücher.example', 'xn--bcher-kva.example', '203.0.113.7', '[2001:db8::1]:443', '2001:db8::1', '::ffff:203.0.113.7', '0.0.0.0', 'my_host.internal']) {
      assert.equal(validateEntry(e), null, e);
      assert.doesNotThrow(() => parseConfigText(toml([e])), e);
    }
  });
  it('accepted spellings mean what they say: trailing dot, upper case and IDN normalise', () => {
    assert.equal((parseEntry('EXAMPLE.com.') as { host: string }).host, 'example.com');
    assert.equal((parseEntry('bücher.example') as { host: string }).host, 'xn--bcher-kva.example');
  });
  it('`vibebox allow` refuses a zero-width character that IDN mapping would silently drop', () => {
    assert.match(validateEntry('a\u200bb.com') ?? '', /"a\\u200bb\.com" contains a control, bidi or zero-width character/);
    assert.match(validateEntry('evil\u202e.com') ?? '', /bidi/);
    // in vibebox.toml the control-character wall answers first, naming the key
    assert.throws(() => parseConfigText(toml(['.exa\u200bmple.com'])), /network\.entries\[0\] contains an invisible or reordering character \(\\u200b\)/);
  });
  it('an error quotes the entry escaped (`vibebox allow` prints it on the terminal)', () => {
    const err = validateEntry('a\x1b[2K.com');
    assert.ok(err !== null);
    assert.ok(!err.includes('\x1b'), err);
    assert.match(err, /a\\e\[2K\.com/);
  });
});
