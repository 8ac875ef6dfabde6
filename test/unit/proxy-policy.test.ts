import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_ALLOWLIST,
  checkResolved,
  classifyAddress,
  decide,
  defaultNetworkPolicy,
  normalizeHost,
  validateEntry,
  type NetworkPolicy,
} from '../../proxy/policy.js';

const allow = (...entries: string[]): NetworkPolicy => ({ mode: 'allowlist', entries });
const block = (...entries: string[]): NetworkPolicy => ({ mode: 'blocklist', entries });

describe('normalizeHost', () => {
  it('lower-cases, strips one trailing dot, converts IDNs to punycode', () => {
    assert.equal(normalizeHost('API.OpenAI.com'), 'api.openai.com');
    assert.equal(normalizeHost('api.openai.com.'), 'api.openai.com');
    assert.equal(normalizeHost('api.openai.com..'), null);
    assert.equal(normalizeHost('Bücher.example'), 'xn--bcher-kva.example');
    assert.equal(normalizeHost('xn--bcher-kva.example'), 'xn--bcher-kva.example');
    assert.equal(normalizeHost('foo\u3002bar.com'), 'foo.bar.com'); // ideographic full stop
  });
  it('canonicalises IP literals', () => {
    assert.equal(normalizeHost('[::1]'), '::1');
    assert.equal(normalizeHost('0:0:0:0:0:0:0:1'), '::1');
    assert.equal(normalizeHost('[2001:DB8::0001]'), '2001:db8::1');
    assert.equal(normalizeHost('127.1'), '127.0.0.1');
    assert.equal(normalizeHost('0x7f000001'), '127.0.0.1');
    assert.equal(normalizeHost('2130706433'), '127.0.0.1');
  });
  it('brings IPv4-mapped and IPv4-compatible IPv6 to the IPv4 address they name', () => {
    for (const h of ['[::ffff:192.0.2.2]', '::ffff:c000:202', '[0:0:0:0:0:ffff:c000:0202]', '::192.0.2.2', '[::c000:202]']) {
      assert.equal(normalizeHost(h), '192.0.2.2', h);
    }
    assert.equal(normalizeHost('::1'), '::1');
    assert.equal(normalizeHost('::'), '::');
    assert.equal(normalizeHost('64:ff9b::192.0.2.2'), '64:ff9b::c000:202', 'NAT64 is another address (compared by identity)');
  });
  it('rejects what is not a host', () => {
    for (const bad of ['', '.', 'a b', 'a/b', 'ex%41mple.com', 'a..b', 'user@host', 'host:80', '[::1', 'fe80::1%eth0', '-a.com', 'xn--zz.com', 'a'.repeat(64) + '.com']) {
      assert.equal(normalizeHost(bad), null, bad);
    }
  });
});

describe('decide: matching', () => {
  it('exact entries match only that host', () => {
    const p = allow('api.openai.com');
    assert.deepEqual(decide(p, 'api.openai.com', 443), { allowed: true, reason: 'in_allowlist', rule: 'api.openai.com', host: 'api.openai.com' });
    assert.equal(decide(p, 'x.api.openai.com', 443).allowed, false);
    assert.equal(decide(p, 'openai.com', 443).allowed, false);
    assert.equal(decide(p, 'evilapi.openai.com', 443).reason, 'not_in_allowlist');
  });
  it('leading-dot entries match the domain and every subdomain, nothing else', () => {
    const p = allow('.github.com');
    assert.equal(decide(p, 'github.com', 443).allowed, true);
    assert.equal(decide(p, 'api.github.com', 443).allowed, true);
    assert.equal(decide(p, 'a.b.github.com', 443).allowed, true);
    assert.equal(decide(p, 'evilgithub.com', 443).allowed, false);
    assert.equal(decide(p, 'github.com.evil.net', 443).allowed, false);
    assert.equal(decide(p, 'github.co', 443).allowed, false);
  });
  it('is case-insensitive and ignores one trailing dot, on both sides', () => {
    const p = allow('API.Anthropic.COM.', '.GitHub.com');
    assert.equal(decide(p, 'api.anthropic.com', 443).allowed, true);
    assert.equal(decide(p, 'API.ANTHROPIC.COM.', 443).allowed, true);
    assert.equal(decide(p, 'Raw.GITHUB.com.', 443).allowed, true);
    assert.equal(decide(p, 'api.anthropic.com..', 443).reason, 'bad_request');
  });
  it('compares IDNs in punycode', () => {
    const p = allow('.bücher.example');
    assert.equal(decide(p, 'xn--bcher-kva.example', 443).allowed, true);
    assert.equal(decide(p, 'shop.BÜCHER.example', 443).allowed, true);
    assert.equal(decide(allow('xn--bcher-kva.example'), 'bücher.example', 80).allowed, true);
    assert.equal(decide(p, 'bucher.example', 443).allowed, false);
  });
  it('ports: an entry without a port matches any port; with a port only that one', () => {
    assert.equal(decide(allow('example.com'), 'example.com', 8080).allowed, true);
    const p = allow('example.com:443', '.example.org:8443', '[2001:db8::1]:443');
    assert.equal(decide(p, 'example.com', 443).allowed, true);
    assert.equal(decide(p, 'example.com', 80).allowed, false);
    assert.equal(decide(p, 'a.example.org', 8443).allowed, true);
    assert.equal(decide(p, 'a.example.org', 443).allowed, false);
    assert.equal(decide(p, '[2001:db8::1]', 443).allowed, true);
    assert.equal(decide(p, '2001:db8::1', 80).allowed, false);
  });
  it('rejects bad ports and hosts as bad_request', () => {
    for (const port of [0, -1, 65536, 1.5, Number.NaN]) assert.equal(decide(allow('a.com'), 'a.com', port).reason, 'bad_request');
    assert.equal(decide(allow('a.com'), 'a com', 80).reason, 'bad_request');
  });
  it('IP literals match only an entry that is exactly that address, never a suffix rule', () => {
    const p = allow('203.0.113.7', '2001:db8::1', '.example.com');
    assert.equal(decide(p, '203.0.113.7', 443).allowed, true);
    assert.equal(decide(p, '203.0.113.8', 443).allowed, false);
    assert.equal(decide(p, '[2001:db8:0:0::1]', 443).allowed, true);
    assert.equal(decide(p, '2001:db8::2', 443).allowed, false);
    // a name entry never matches an IP, even if that IP is what the name resolves to
    assert.equal(decide(allow('example.com'), '93.184.215.14', 443).allowed, false);
    // a suffix made of digits is not an IP suffix rule
    assert.equal(decide(allow('.113.7'), '203.0.113.7', 443).allowed, false);
    // the IPv4 forms the URL standard accepts are the same address
    assert.equal(decide(allow('203.0.113.7'), '3405803783', 443).allowed, true);
  });
  it('blocklist mode', () => {
    const p = block('.tiktok.com', 'evil.example:25');
    assert.deepEqual(decide(p, 'www.tiktok.com', 443), { allowed: false, reason: 'in_blocklist', rule: '.tiktok.com', host: 'www.tiktok.com' });
    assert.equal(decide(p, 'example.com', 443).reason, 'not_in_blocklist');
    assert.equal(decide(p, 'evil.example', 25).allowed, false);
    assert.equal(decide(p, 'evil.example', 443).allowed, true);
  });
  it('an IP entry matches every spelling of that address (mapped, compatible, NAT64, hex)', () => {
    for (const h of ['[::ffff:203.0.113.7]', '::ffff:cb00:7107', '::203.0.113.7', '64:ff9b::203.0.113.7']) {
      assert.equal(decide(block('203.0.113.7'), h, 443).reason, 'in_blocklist', h);
      assert.equal(decide(allow('203.0.113.7'), h, 443).allowed, true, h);
      assert.equal(decide(block(`[${h.replace(/^\[|\]$/g, '')}]`), '203.0.113.7', 443).reason, 'in_blocklist', h);
    }
  });
  it('malformed entries never match', () => {
    assert.equal(decide(allow('*.github.com', 'http://x.com/'), 'a.github.com', 443).allowed, false);
  });
});

describe('the default allowlist is scoped to ports', () => {
  it('allows HTTPS (and HTTP only for the Debian archive), no other port', () => {
    const p = defaultNetworkPolicy();
    for (const e of DEFAULT_ALLOWLIST) assert.match(e, /:(443|80)$/, e);
    for (const h of ['api.anthropic.com', 'api.openai.com', 'registry.npmjs.org', 'github.com', 'codeload.github.com']) {
      assert.equal(decide(p, h, 443).allowed, true, h);
      for (const port of [80, 22, 8443, 6379]) assert.equal(decide(p, h, port).allowed, false, `${h}:${port}`);
    }
    for (const h of ['deb.debian.org', 'security.debian.org']) {
      assert.equal(decide(p, h, 80).allowed, true, h);
      assert.equal(decide(p, h, 443).allowed, true, h);
      assert.equal(decide(p, h, 21).allowed, false, h);
    }
  });
});

describe('decide: always-refused destinations', () => {
  const everything = block();
  const loopbacks = [
    'localhost', 'LOCALHOST.', 'foo.localhost', '127.0.0.1', '127.1.2.3', '127.1', '0x7f.1', '2130706433',
    '::1', '[::1]', '0:0:0:0:0:0:0:1', '0.0.0.0', '0', '::', '[::ffff:127.0.0.1]', '::ffff:7f00:1', '::127.0.0.1',
  ];
  for (const h of loopbacks) {
    it(`refuses ${h} as loopback, even when listed`, () => {
      assert.equal(decide(everything, h, 80).reason, 'loopback');
      const d = decide(allow(h, '.localhost', '127.0.0.1', '::1'), h, 80);
      assert.equal(d.allowed, false);
      assert.equal(d.reason, 'loopback');
    });
  }
  it('refuses link-local (cloud metadata) and reserved addresses', () => {
    assert.equal(decide(allow('169.254.169.254'), '169.254.169.254', 80).reason, 'link_local');
    assert.equal(decide(everything, 'fe80::1', 80).reason, 'link_local');
    assert.equal(decide(everything, '::ffff:169.254.169.254', 80).reason, 'link_local');
    assert.equal(decide(everything, '224.0.0.1', 80).reason, 'reserved');
    assert.equal(decide(everything, '255.255.255.255', 80).reason, 'reserved');
    assert.equal(decide(everything, 'ff02::1', 80).reason, 'reserved');
  });
  it('private ranges: refused in blocklist mode, allowed only by an exact allowlist entry', () => {
    for (const ip of ['10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '100.64.0.1', 'fd00::1', '::ffff:10.0.0.1']) {
      assert.equal(decide(everything, ip, 80).reason, 'private', ip);
      assert.equal(decide(allow(), ip, 80).reason, 'not_in_allowlist', ip);
      assert.equal(decide(allow(ip), ip, 80).allowed, true, ip);
    }
    assert.equal(decide(everything, '172.32.0.1', 80).allowed, true);
  });
  it('allowLoopbackForTests lets loopback through the policy (tests only)', () => {
    assert.equal(decide(allow('127.0.0.1'), '127.0.0.1', 80, { allowLoopbackForTests: true }).allowed, true);
    assert.equal(decide(allow(), '127.0.0.1', 80, { allowLoopbackForTests: true }).reason, 'not_in_allowlist');
  });
});

describe('classifyAddress', () => {
  it('classifies', () => {
    assert.equal(classifyAddress('8.8.8.8'), null);
    assert.equal(classifyAddress('2606:4700::1111'), null);
    assert.equal(classifyAddress('127.0.0.53'), 'loopback');
    assert.equal(classifyAddress('::ffff:127.0.0.1'), 'loopback');
    assert.equal(classifyAddress('64:ff9b::127.0.0.1'), 'loopback');
    assert.equal(classifyAddress('64:ff9b::8.8.8.8'), null);
    assert.equal(classifyAddress('fe80::1%eth0'), 'link_local');
    assert.equal(classifyAddress('fc12::1'), 'private');
    assert.equal(classifyAddress('not-an-ip'), 'reserved');
  });
});

describe('checkResolved', () => {
  const p = allow('rebind.example', '.corp.example');
  it('refuses when ANY resolved address is loopback', () => {
    const d = decide(p, 'rebind.example', 443);
    assert.equal(d.allowed, true);
    assert.equal(checkResolved(p, d, ['93.184.215.14', '127.0.0.1']).reason, 'loopback');
    assert.equal(checkResolved(p, d, ['::1']).reason, 'loopback');
    assert.equal(checkResolved(p, d, ['93.184.215.14']).allowed, true);
    assert.equal(checkResolved(p, d, ['169.254.169.254']).reason, 'link_local');
    assert.equal(checkResolved(p, d, []).allowed, false);
  });
  it("refuses the host's own addresses", () => {
    const d = decide(p, 'rebind.example', 443);
    assert.equal(checkResolved(p, d, ['198.51.100.9'], { hostAddresses: ['198.51.100.9'] }).reason, 'host_address');
    for (const a of ['::ffff:198.51.100.9', '::ffff:c633:6409', '::198.51.100.9', '64:ff9b::c633:6409']) {
      assert.equal(checkResolved(p, d, [a], { hostAddresses: ['198.51.100.9'] }).reason, 'host_address', a);
    }
    assert.equal(checkResolved(p, d, ['198.51.100.9'], { hostAddresses: ['::ffff:198.51.100.9', 'fe80::1%eth0'] }).reason, 'host_address');
  });
  it('private addresses need an explicit allowlist entry', () => {
    const d = decide(p, 'db.corp.example', 5432);
    assert.equal(checkResolved(p, d, ['10.0.0.5']).allowed, true);
    const b = block();
    assert.equal(checkResolved(b, decide(b, 'db.corp.example', 5432), ['10.0.0.5']).reason, 'private');
  });
  it('passes denials through and honours allowLoopbackForTests', () => {
    const denied = decide(p, 'other.example', 443);
    assert.equal(checkResolved(p, denied, ['8.8.8.8']), denied);
    const d = decide(allow('localhost'), 'localhost', 80, { allowLoopbackForTests: true });
    assert.equal(checkResolved(allow('localhost'), d, ['127.0.0.1', '::1'], { allowLoopbackForTests: true }).allowed, true);
  });
});

describe('validateEntry', () => {
  it('accepts valid entries', () => {
    for (const e of ['api.openai.com', '.github.com', 'API.OpenAI.com.', 'example.com:443', '.example.com:8443', '203.0.113.7', '2001:db8::1', '[2001:db8::1]:443', 'bücher.example', '.com', 'my_host.internal']) {
      assert.equal(validateEntry(e), null, e);
    }
  });
  it('explains malformed entries', () => {
    const bad: Record<string, RegExp> = {
      '': /empty/,
      'https://api.openai.com/v1': /URL/,
      '*.github.com': /leading dot/,
      'git*hub.com': /wildcard/,
      '10.0.0.0/8': /CIDR/,
      'example.com:0': /port/,
      'example.com:99999': /port/,
      'example.com:http': /port/,
      '.203.0.113.7': /IP address/,
      '..github.com': /./,
      'a b.com': /not a valid/,
      '[2001:db8::1': /\]/,
      '2001:db8::1:443x': /not a valid/,
    };
    for (const [e, re] of Object.entries(bad)) {
      const err = validateEntry(e);
      assert.ok(err !== null, `expected an error for ${JSON.stringify(e)}`);
      assert.match(err, re, e);
    }
  });
  it('the default allowlist is valid and covers AI providers and registries', () => {
    for (const e of DEFAULT_ALLOWLIST) assert.equal(validateEntry(e), null, e);
    const p = defaultNetworkPolicy();
    assert.equal(p.mode, 'allowlist');
    for (const h of ['api.anthropic.com', 'api.openai.com', 'generativelanguage.googleapis.com', 'registry.npmjs.org', 'pypi.org', 'files.pythonhosted.org', 'deb.debian.org', 'security.debian.org', 'github.com', 'codeload.github.com', 'objects.githubusercontent.com']) {
      assert.equal(decide(p, h, 443).allowed, true, h);
    }
    assert.equal(decide(p, 'example.com', 443).allowed, false);
    p.entries.push('x.com');
    assert.ok(!DEFAULT_ALLOWLIST.includes('x.com'));
  });
});
