import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatSize, parseSize } from '../../src/config/size.js';
import { parseConfigText } from '../../src/config/load.js';
import { VibeboxError } from '../../src/errors.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const TiB = 1024 ** 4;

describe('parseSize', () => {
  it('binary units', () => {
    assert.equal(parseSize('2GiB'), 2 * GiB);
    assert.equal(parseSize('512MiB'), 512 * MiB);
    assert.equal(parseSize('64KiB'), 64 * KiB);
    assert.equal(parseSize('1TiB'), TiB);
  });
  it('short units are binary, xB units are decimal', () => {
    assert.equal(parseSize('20G'), 20 * GiB);
    assert.equal(parseSize('512M'), 512 * MiB);
    assert.equal(parseSize('4k'), 4 * KiB);
    assert.equal(parseSize('1T'), TiB);
    assert.equal(parseSize('1GB'), 1e9);
    assert.equal(parseSize('1MB'), 1e6);
    assert.equal(parseSize('1kB'), 1000);
    assert.equal(parseSize('1TB'), 1e12);
  });
  it('is case-insensitive and allows spaces', () => {
    assert.equal(parseSize('2gib'), 2 * GiB);
    assert.equal(parseSize('2GIB'), 2 * GiB);
    assert.equal(parseSize(' 2 GiB '), 2 * GiB);
  });
  it('bytes: a bare number, "B", or a JS number', () => {
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('4096B'), 4096);
    assert.equal(parseSize(4096), 4096);
  });
  it('fractions are rounded to whole bytes', () => {
    assert.equal(parseSize('1.5GiB'), 1.5 * GiB);
    assert.equal(parseSize('0.5MiB'), 512 * KiB);
    assert.equal(parseSize('1.0000001B'), 1);
  });
  it('rejects what is not a size', () => {
    for (const bad of ['', ' ', 'GiB', 'lots', '2 Gib x', '2XB', '2PiB', '-1GiB', '+1GiB', '1e9', '0x10', '1,5GiB', '1.GiB', '.5GiB', '2 G i B']) {
      assert.equal(parseSize(bad), null, JSON.stringify(bad));
    }
  });
  it('rejects zero, negative, fractional and unsafe numbers', () => {
    assert.equal(parseSize('0'), null);
    assert.equal(parseSize('0GiB'), null);
    assert.equal(parseSize('0.1B'), null);
    assert.equal(parseSize(0), null);
    assert.equal(parseSize(-1), null);
    assert.equal(parseSize(1.5), null);
    assert.equal(parseSize(Number.NaN), null);
    assert.equal(parseSize(Number.POSITIVE_INFINITY), null);
    assert.equal(parseSize(2 ** 60), null);
    assert.equal(parseSize('99999999TiB'), null);
  });
});

describe('formatSize', () => {
  it('uses the largest exact binary unit', () => {
    assert.equal(formatSize(2 * GiB), '2GiB');
    assert.equal(formatSize(512 * MiB), '512MiB');
    assert.equal(formatSize(1536 * MiB), '1536MiB');
    assert.equal(formatSize(3 * KiB), '3KiB');
    assert.equal(formatSize(1000), '1000');
    assert.equal(formatSize(1), '1');
  });
  it('round-trips through parseSize', () => {
    for (const n of [1, 1000, KiB, 3 * KiB, 512 * MiB, 1536 * MiB, 2 * GiB, 20 * GiB, 4 * TiB]) {
      assert.equal(parseSize(formatSize(n)), n, String(n));
    }
  });
});

describe('sizes in vibebox.toml are bounded by what a VM can use', () => {
  const bad = (text: string, ...patterns: RegExp[]) =>
    assert.throws(() => parseConfigText(text), (e: unknown) => {
      assert.ok(e instanceof VibeboxError, String(e));
      assert.equal(e.exitCode, 2);
      assert.doesNotMatch(e.toLine(), /\n/);
      for (const p of patterns) assert.match(e.toLine(), p);
      return true;
    });
  it('memory: one byte, "1.5k" and "1000TiB" are refused with the key path', () => {
    bad('[vm]\nmemory = 1\n', /vibebox\.toml: vm\.memory: must be at least 256MiB, got 1 \(/);
    bad('[vm]\nmemory = "1.5k"\n', /vm\.memory: must be at least 256MiB, got "1\.5k"/);
    bad('[vm]\nmemory = "1000TiB"\n', /vm\.memory: must be at most 1TiB, got "1000TiB"/);
    bad('[vm]\nmemory = "1.3GiB"\n', /vm\.memory: must be a whole number of MiB, got "1\.3GiB"/);
    assert.equal(parseConfigText('[vm]\nmemory = "256MiB"\n').vm.memory, 256 * MiB);
    assert.equal(parseConfigText('[vm]\nmemory = "1.5GiB"\n').vm.memory, 1536 * MiB);
    assert.equal(parseConfigText('[vm]\nmemory = "1TiB"\n').vm.memory, TiB);
  });
  it('disk: at least 1GiB, at most 16TiB, whole MiB', () => {
    bad('[vm]\ndisk = "512MiB"\n', /vm\.disk: must be at least 1GiB/);
    bad('[vm]\ndisk = "1000TiB"\n', /vm\.disk: must be at most 16TiB/);
    bad('[vm]\ndisk = 1073741825\n', /vm\.disk: must be a whole number of MiB/);
    assert.equal(parseConfigText('[vm]\ndisk = "1GiB"\n').vm.disk, GiB);
    assert.equal(parseConfigText('[vm]\ndisk = "16TiB"\n').vm.disk, 16 * TiB);
  });
  it('container.memory: at least what the runtime accepts (6MiB)', () => {
    bad('[container]\nmemory = "1k"\n', /container\.memory: must be at least 6MiB/);
    assert.equal(parseConfigText('[container]\nmemory = "64MiB"\n').container.memory, 64 * MiB);
  });
});
