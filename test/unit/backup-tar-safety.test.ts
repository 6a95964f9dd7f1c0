import { Readable } from 'node:stream';
import { pack, type Header } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { checkTarEntries, isSafeEntryName } from '../../agent/backup/streams/tar-safety.js';
import { AgentError } from '../../agent/core/errors.js';

type E = Partial<Header> & { name: string; body?: string };

const dir = (name: string): E => ({ name, type: 'directory' });
const file = (name: string, body = ''): E => ({ name, body });
const symlink = (name: string, linkname: string): E => ({ name, type: 'symlink', linkname });
const hardlink = (name: string, linkname: string): E => ({ name, type: 'link', linkname });

async function archive(entries: E[]): Promise<Buffer> {
  const p = pack();
  for (const { body, ...header } of entries) {
    if (body === undefined) p.entry(header);
    else p.entry(header, body);
  }
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function check(entries: E[] | Buffer, root = 'data') {
  const buf = Buffer.isBuffer(entries) ? entries : await archive(entries);
  // small chunks so that headers and bodies straddle writes
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += 700) chunks.push(buf.subarray(i, i + 700));
  const source = Readable.from(chunks, { objectMode: false });
  const result = await checkTarEntries(source, { root }).then(
    (r) => ({ ok: true as const, ...r }),
    (e: unknown) => ({ ok: false as const, error: e }),
  );
  return { result, source };
}

const long = 'x'.repeat(120);
const good: E[] = [
  dir('data'),
  file('data/PG_VERSION', '16\n'),
  dir('data/base/'),
  file('data/base/1', 'relation'),
  symlink('data/current', 'base/1'),
  symlink('data/base/version', '../PG_VERSION'),
  symlink('data/self', '.'),
  hardlink('data/PG_VERSION.hard', 'data/PG_VERSION'),
  file(`data/${long}/${long}.conf`, 'pax'),
  symlink(`data/${long}/link`, `../${long}/${long}.conf`),
];

describe('checkTarEntries', () => {
  it('accepts a Docker-style archive and counts entries and content bytes', async () => {
    const buf = await archive(good);
    // the long names really went through pax headers
    expect(buf.includes('PaxHeader')).toBe(true);
    const { result } = await check(buf);
    expect(result).toEqual({ ok: true, entries: good.length, bytes: 3 + 8 + 3 });
  });

  it('accepts an empty archive', async () => {
    expect((await check([])).result).toEqual({ ok: true, entries: 0, bytes: 0 });
  });

  it('accepts a file archive whose root is the file itself', async () => {
    expect((await check([file('dump.sql', 'x')], 'dump.sql')).result).toEqual({ ok: true, entries: 1, bytes: 1 });
  });

  it.each([
    { name: 'absolute path', entries: [dir('data'), file('/etc/passwd', 'x')], entry: '/etc/passwd', reason: 'absolute-path' },
    { name: 'parent segments', entries: [dir('data'), file('data/../../etc/x', 'x')], entry: 'data/../../etc/x', reason: 'parent-segment' },
    { name: 'a lone ..', entries: [file('..', 'x')], entry: '..', reason: 'parent-segment' },
    { name: 'entry outside root', entries: [dir('data'), file('other/file', 'x')], entry: 'other/file', reason: 'outside-root' },
    { name: 'root prefix lookalike', entries: [file('database/x', 'x')], entry: 'database/x', reason: 'outside-root' },
    { name: 'leading ./', entries: [file('./data/x', 'x')], entry: './data/x', reason: 'outside-root' },
    { name: 'dot segment', entries: [file('data/./x', 'x')], entry: 'data/./x', reason: 'invalid-name' },
    { name: 'empty segment', entries: [file('data//x', 'x')], entry: 'data//x', reason: 'invalid-name' },
    { name: 'absolute symlink', entries: [dir('data'), symlink('data/s', '/etc/shadow')], entry: 'data/s', reason: 'symlink-absolute' },
    { name: 'escaping symlink', entries: [dir('data'), symlink('data/a', '../../x')], entry: 'data/a', reason: 'symlink-escapes-root' },
    { name: 'symlink to the parent of root', entries: [symlink('data/a', '..')], entry: 'data/a', reason: 'symlink-escapes-root' },
    { name: 'symlink leaving and re-entering root', entries: [symlink('data/a', '../data/b')], entry: 'data/a', reason: 'symlink-escapes-root' },
    { name: 'root as a symlink', entries: [symlink('data', 'elsewhere')], entry: 'data', reason: 'symlink-escapes-root' },
    { name: 'symlink with an empty target', entries: [symlink('data/a', '')], entry: 'data/a', reason: 'invalid-link' },
    {
      name: 'symlink escaping through another symlink',
      entries: [symlink('data/x', '.'), symlink('data/a', 'x/..')],
      entry: 'data/a',
      reason: 'symlink-escapes-root',
    },
    {
      name: 'symlink loop used as a directory',
      entries: [symlink('data/a', 'b'), symlink('data/b', 'a'), file('data/a/f', 'x')],
      entry: 'data/a/f',
      reason: 'path-escapes-root',
    },
    {
      name: 'file written through a symlink redirected later',
      entries: [symlink('data/a', 'x/..'), symlink('data/x', '.'), file('data/a/evil', 'x')],
      entry: 'data/a/evil',
      reason: 'path-escapes-root',
    },
    {
      name: 'symlink redirected by a later symlink',
      entries: [symlink('data/a', 'x/..'), symlink('data/x', 'y'), symlink('data/y', '.')],
      entry: 'data/a',
      reason: 'symlink-escapes-root',
    },
    { name: 'hardlink with ..', entries: [dir('data'), hardlink('data/h', '../x')], entry: 'data/h', reason: 'hardlink-outside-root' },
    { name: 'hardlink into root with ..', entries: [hardlink('data/h', 'data/../data/x')], entry: 'data/h', reason: 'hardlink-outside-root' },
    { name: 'hardlink outside root', entries: [hardlink('data/h', 'etc/passwd')], entry: 'data/h', reason: 'hardlink-outside-root' },
    { name: 'absolute hardlink', entries: [hardlink('data/h', '/etc/passwd')], entry: 'data/h', reason: 'hardlink-outside-root' },
    {
      name: 'hardlink through an escaping symlink',
      entries: [symlink('data/a', 'x/..'), symlink('data/x', '.'), hardlink('data/h', 'data/a/etc/passwd')],
      entry: 'data/h',
      reason: 'hardlink-outside-root',
    },
    { name: 'fifo', entries: [dir('data'), { name: 'data/fifo', type: 'fifo' } as E], entry: 'data/fifo', reason: 'unsupported-type' },
    {
      name: 'character device',
      entries: [{ name: 'data/null', type: 'character-device', devmajor: 1, devminor: 3 } as E],
      entry: 'data/null',
      reason: 'unsupported-type',
    },
    { name: 'block device', entries: [{ name: 'data/sda', type: 'block-device', devmajor: 8 } as E], entry: 'data/sda', reason: 'unsupported-type' },
    { name: 'contiguous file', entries: [{ name: 'data/c', type: 'contiguous-file', body: 'c' } as E], entry: 'data/c', reason: 'unsupported-type' },
    { name: 'long name that escapes', entries: [file(`data/${long}/../../../etc/passwd`, 'x')], entry: `data/${long}/../../../etc/passwd`, reason: 'parent-segment' },
    { name: 'long name outside root', entries: [file(`other/${long}`, 'x')], entry: `other/${long}`, reason: 'outside-root' },
    { name: 'long symlink target that escapes', entries: [symlink('data/l', `${'../'.repeat(40)}etc`)], entry: 'data/l', reason: 'symlink-escapes-root' },
  ])('refuses $name', async ({ entries, entry, reason }) => {
    const { result, source } = await check([...good, ...entries]);
    expect(result.ok).toBe(false);
    const error = (result as { error: unknown }).error;
    expect(error).toBeInstanceOf(AgentError);
    expect(error).toMatchObject({ code: 'BACKUP_FAILED', data: { entry, reason } });
    expect(source.destroyed).toBe(true);
  });

  it.each([
    { name: 'garbage', make: async () => Buffer.alloc(1024, 'x') },
    { name: 'a truncated header', make: async () => (await archive(good)).subarray(0, 700) },
    { name: 'a truncated body', make: async () => (await archive([file('data/f', 'y'.repeat(2000))])).subarray(0, 1500) },
  ])('refuses $name as an invalid archive', async ({ make }) => {
    const { result } = await check(await make());
    expect(result).toMatchObject({ ok: false, error: { code: 'BACKUP_FAILED', data: { reason: 'invalid-archive' } } });
  });

  it('refuses a root that is not a single segment', async () => {
    const { result, source } = await check(good, 'data/base');
    expect(result).toMatchObject({ ok: false, error: { code: 'INTERNAL' } });
    expect(source.destroyed).toBe(true);
  });
});

describe('isSafeEntryName', () => {
  it.each([
    ['data', true],
    ['data/', true],
    ['data/base/1', true],
    ['data/dir/', true],
    ['data/..hidden', true],
    ['data/a..b', true],
    ['/data/x', false],
    ['data/../x', false],
    ['data/x/..', false],
    ['..', false],
    ['', false],
    ['other', false],
    ['database', false],
    ['./data', false],
    ['data/./x', false],
    ['data//x', false],
    ['data/x\0y', false],
  ])('%j is %s', (name, safe) => {
    expect(isSafeEntryName(name, 'data')).toBe(safe);
  });

  it.each(['', '.', '..', 'a/b'])('is false for any name with the invalid root %j', (root) => {
    expect(isSafeEntryName(`${root}/x`, root)).toBe(false);
  });
});

/** One raw ustar header (512 bytes, checksum filled in) and its padded body. */
function rawEntry(name: string, type: string, body: Buffer | string = ''): Buffer {
  const data = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

const paxRecord = (key: string, value: string) => {
  const rest = ` ${key}=${value}\n`;
  let len = rest.length + 2;
  if (`${len}${rest}`.length !== len) len += 1;
  return `${len}${rest}`;
};

describe('names tar implementations read differently', () => {
  it('refuses an entry named by both a pax header and a GNU long-name header', async () => {
    const both = Buffer.concat([rawEntry('data', '5'), rawEntry('PaxHeader', 'x', paxRecord('path', 'data/a')), rawEntry('././@LongLink', 'L', 'data/b\0'), rawEntry('data/c', '0', 'x'), Buffer.alloc(1024)]);
    const { result } = await check(both);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.error instanceof AgentError && result.error.data?.reason).toBe('ambiguous-name');
  });

  it('refuses a global pax path beside a GNU long name, and keeps its place through a pax size', async () => {
    const globalAndGnu = Buffer.concat([rawEntry('data', '5'), rawEntry('GlobalHead', 'g', paxRecord('path', 'data/a')), rawEntry('././@LongLink', 'L', 'data/b\0'), rawEntry('data/c', '0', 'x'), Buffer.alloc(1024)]);
    expect((await check(globalAndGnu)).result).toMatchObject({ ok: false });
    // The body's size is in the pax header (the ustar field says 0): a fake header inside the
    // body must not be taken for one, and the real pax + GNU pair after it is still found.
    const fake = rawEntry('data/zzz', '0', '');
    const body = Buffer.concat([fake, Buffer.alloc(512)]);
    const sized = rawEntry('PaxHeader', 'x', paxRecord('size', String(body.length)));
    const entry = Buffer.concat([rawEntry('data/big', '0', ''), body]);
    const pair = Buffer.concat([rawEntry('PaxHeader', 'x', paxRecord('path', 'data/a')), rawEntry('././@LongLink', 'L', 'data/b\0'), rawEntry('data/c', '0', 'x')]);
    expect((await check(Buffer.concat([rawEntry('data', '5'), sized, entry, pair, Buffer.alloc(1024)]))).result).toMatchObject({ ok: false });
  });

  it('accepts either one alone', async () => {
    for (const ext of [rawEntry('PaxHeader', 'x', paxRecord('path', `data/${'p'.repeat(120)}`)), rawEntry('././@LongLink', 'L', `data/${'g'.repeat(120)}\0`)]) {
      const { result } = await check(Buffer.concat([rawEntry('data', '5'), ext, rawEntry('data/short', '0', 'x'), Buffer.alloc(1024)]));
      expect(result).toMatchObject({ ok: true, entries: 2 });
    }
  });
});
