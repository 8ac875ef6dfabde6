// A port on 127.0.0.1 that is free now (the kernel's pick, closed again at once): for a forward
// that should not take a port a user chose. Another process may take it before the caller does.
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
  });
}
