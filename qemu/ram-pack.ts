// Guest RAM files, packed for a suspend: only the extents tmpfs holds (SEEK_DATA/SEEK_HOLE) and
// only their non-zero chunks, as records `u64 offset, u64 length, bytes`, through zstd. Unpacked
// with pwrite into a fresh sparse file, it is the same RAM (holes read as zero) and the resumed
// VM holds only what the guest used. python3 because Node has no SEEK_DATA; it is on the
// README's apt line already (virtiofsd's launcher).

export const RAM_MAGIC = 'VBRAM1';

/** stdin: the RAM file (read-only); stdout: the records. */
export const PACK_PY = String.raw`
import os, struct, sys
fd, out, CH = 0, sys.stdout.buffer, 64 * 1024
size = os.fstat(fd).st_size
Z = bytes(CH)
out.write(b'VBRAM1\0\0' + struct.pack('<Q', size))
off = 0
while off < size:
  try:
    d = os.lseek(fd, off, os.SEEK_DATA)
  except OSError:
    break
  h = min(os.lseek(fd, d, os.SEEK_HOLE), size)
  p = d
  while p < h:
    b = os.pread(fd, min(CH, h - p), p)
    if not b:
      break
    if b != (Z if len(b) == CH else bytes(len(b))):
      out.write(struct.pack('<QQ', p, len(b)))
      out.write(b)
    p += len(b)
  off = h
out.write(struct.pack('<QQ', 2**64 - 1, 0))
out.flush()
`;

/** stdin: the records; argv[1]: the RAM file to create (0600, never an existing one). */
export const UNPACK_PY = String.raw`
import os, struct, sys
inp = sys.stdin.buffer
hdr = inp.read(16)
if len(hdr) != 16 or hdr[:8] != b'VBRAM1\0\0':
  sys.exit('not a vibebox RAM image')
size = struct.unpack('<Q', hdr[8:])[0]
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
os.ftruncate(fd, size)
while True:
  rec = inp.read(16)
  if len(rec) != 16:
    sys.exit('the RAM image is truncated')
  off, n = struct.unpack('<QQ', rec)
  if off == 2**64 - 1:
    break
  if off + n > size:
    sys.exit('a RAM image record lies outside the RAM')
  b = inp.read(n)
  if len(b) != n:
    sys.exit('the RAM image is truncated')
  os.pwrite(fd, b, off)
if inp.read(1):
  sys.exit('data after the end of the RAM image')
os.close(fd)
`;
