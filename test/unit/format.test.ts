import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { table, timeAgo } from '../../src/cli/format.js';

const now = new Date('2025-06-01T12:00:00.000Z');
const ago = (seconds: number) => timeAgo(new Date(now.getTime() - seconds * 1000).toISOString(), now);

describe('timeAgo', () => {
  it('just now for under 45 seconds and for the future', () => {
    assert.equal(ago(0), 'just now');
    assert.equal(ago(10), 'just now');
    assert.equal(ago(44), 'just now');
    assert.equal(ago(-3600), 'just now');
  });
  it('minutes', () => {
    assert.equal(ago(45), '1 minute ago');
    assert.equal(ago(60), '1 minute ago');
    assert.equal(ago(89), '1 minute ago');
    assert.equal(ago(90), '2 minutes ago');
    assert.equal(ago(3 * 60), '3 minutes ago');
    assert.equal(ago(3 * 60 + 20), '3 minutes ago');
    assert.equal(ago(44 * 60), '44 minutes ago');
  });
  it('hours', () => {
    assert.equal(ago(45 * 60), '1 hour ago');
    assert.equal(ago(3600), '1 hour ago');
    assert.equal(ago(2 * 3600), '2 hours ago');
    assert.equal(ago(17 * 3600), '17 hours ago');
  });
  it('days, months, years', () => {
    assert.equal(ago(18 * 3600), '1 day ago');
    assert.equal(ago(86400), '1 day ago');
    assert.equal(ago(3 * 86400), '3 days ago');
    assert.equal(ago(22 * 86400), '22 days ago');
    assert.equal(ago(23 * 86400), '1 month ago');
    assert.equal(ago(65 * 86400), '2 months ago');
    assert.equal(ago(300 * 86400), '1 year ago');
    assert.equal(ago(3 * 365 * 86400), '3 years ago');
  });
  it('accepts any RFC 3339 offset and defaults to the current time', () => {
    assert.equal(timeAgo('2025-06-01T13:57:00+02:00', now), '3 minutes ago');
    assert.equal(timeAgo(new Date(Date.now() - 5 * 60_000).toISOString()), '5 minutes ago');
  });
  it('an unreadable time is unknown', () => {
    assert.equal(timeAgo('not a date', now), 'unknown');
    assert.equal(timeAgo('', now), 'unknown');
  });
});

describe('table', () => {
  it('pads every column but the last to its widest cell', () => {
    const t = table(['ID', 'DIR', 'STATE'], [['a', '/long/dir', 'stopped'], ['bbbb', '/d', 'running']]);
    assert.equal(t, ['ID    DIR        STATE', 'a     /long/dir  stopped', 'bbbb  /d         running'].join('\n'));
  });
  it('handles no rows and missing cells', () => {
    assert.equal(table(['A', 'B'], []), 'A  B');
    assert.equal(table(['A', 'B'], [['x']]), 'A  B\nx');
  });
});
