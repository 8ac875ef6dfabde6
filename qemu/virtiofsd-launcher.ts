// The first process of every virtiofsd chain, in python3 (on the README's apt line) because Node
// cannot install a seccomp filter. It (1) binds and listens on the vhost-user socket and hands it
// to virtiofsd as fd 3 — the C virtiofsd otherwise takes a lock in /var/run/virtiofsd, which an
// ordinary user cannot create; (2) installs a seccomp filter that every later process inherits
// (unshare, sh, virtiofsd and the server it forks), then execs the rest of the command line.
//
// The filter is the host-side wall against files the guest must not make, whoever runs vibebox:
//  - chmod/fchmod/fchmodat/fchmodat2, mkdir(at), mknod(at), open(at)/creat with S_ISUID or S_ISGID
//    in the mode: EPERM (a setuid file on the host would run as the user — as root under root);
//  - mknod(at) of a character or block device: EPERM;
//  - openat2: ENOSYS (its mode sits in a struct the filter cannot read; callers fall back to openat);
//  - setgroups(0, NULL): succeeds without doing anything. In a user namespace an ordinary user
//    makes, setgroups is denied, and virtiofsd exits when dropping supplementary groups fails. The
//    groups it keeps are the user's own, so skipping the drop grants nothing the user lacks.
// Other architectures than x86_64 and aarch64: the launcher refuses to start (exit 3).

export const LAUNCHER_PY = String.raw`
import ctypes, os, socket, struct, sys
sock_path, cmd = sys.argv[1], sys.argv[3:]
S_SUID = 0o6000
ARCHES = {
  'x86_64': (0xC000003E, dict(setgroups=116, openat2=437, chmod=[(90, 1), (91, 1), (268, 2), (452, 2), (83, 1), (258, 2), (2, 2), (257, 3), (85, 1)], mknod=[(133, 1), (259, 2)])),
  'aarch64': (0xC00000B7, dict(setgroups=159, openat2=437, chmod=[(52, 1), (53, 2), (452, 2), (34, 2), (56, 3)], mknod=[(33, 2)])),
}
machine = os.uname().machine
if machine not in ARCHES:
  sys.stderr.write('vibebox virtiofsd launcher: no seccomp filter for %s\n' % machine); sys.exit(3)
audit, t = ARCHES[machine]
RET, LD, JEQ, JGE, JSET, AND = 0x06, 0x20, 0x15, 0x35, 0x45, 0x54
ALLOW, KILL, ERRNO = 0x7fff0000, 0x80000000, 0x00050000
EPERM, ENOSYS = 1, 38
ins = lambda code, k, jt=0, jf=0: struct.pack('HBBI', code, jt, jf, k)
arg = lambda i: 16 + 8 * i  # low 32 bits of args[i] (little endian)
p = [ins(LD, 4), ins(JEQ, audit, 1, 0), ins(RET, KILL), ins(LD, 0)]
if machine == 'x86_64':
  p += [ins(JGE, 0x40000000, 0, 1), ins(RET, ERRNO | ENOSYS)]  # x32 numbers
p += [ins(JEQ, t['openat2'], 0, 1), ins(RET, ERRNO | ENOSYS)]
p += [ins(JEQ, t['setgroups'], 0, 3), ins(LD, arg(0)), ins(JEQ, 0, 0, 1), ins(RET, ERRNO | 0), ins(LD, 0)]
for nr, a in t['chmod']:
  p += [ins(JEQ, nr, 0, 4), ins(LD, arg(a)), ins(JSET, S_SUID, 0, 1), ins(RET, ERRNO | EPERM), ins(LD, 0)]
for nr, a in t['mknod']:
  p += [ins(JEQ, nr, 0, 7), ins(LD, arg(a)), ins(JSET, S_SUID, 3, 0), ins(AND, 0o170000),
        ins(JEQ, 0o020000, 1, 0), ins(JEQ, 0o060000, 0, 1), ins(RET, ERRNO | EPERM), ins(LD, 0)]
p += [ins(RET, ALLOW)]
old = os.umask(0o077)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sock_path)
s.listen(4)
os.umask(old)
if s.fileno() != 3:
  os.dup2(s.fileno(), 3)
else:
  os.set_inheritable(3, True)
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(b''.join(p))
class Prog(ctypes.Structure):
  _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]
prog = Prog(len(p), ctypes.cast(buf, ctypes.c_void_p))
if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:
  sys.stderr.write('vibebox virtiofsd launcher: seccomp: %s\n' % os.strerror(ctypes.get_errno())); sys.exit(3)
os.execvp(cmd[0], cmd)
`;

/** argv that runs `cmd` behind the launcher, listening on `socket` as fd 3 (pure). */
export function launcherArgv(python: string, socket: string, cmd: string[]): string[] {
  return [python, '-c', LAUNCHER_PY, socket, '--', ...cmd];
}
