// Liveness of a unix-socket server: something accepts a connection there. Used by the host
// (is the supervisor up?) and by the guest agent (is dockerd up?).
import { connect } from 'node:net';

export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
