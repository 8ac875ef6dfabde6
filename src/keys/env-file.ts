// API keys for agents: ~/.vibebox/.env on the host, KEY=value lines. Read at each
// `vibebox run` and handed to that one process in the container, never stored in the VM.
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { VibeboxError } from '../errors.js';
import { vibeboxHome } from '../paths.js';

export const keysFile = (home: string = vibeboxHome()): string => join(home, '.env');

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parse .env text (pure): `KEY=value`, `export KEY=value`, values bare or in '…' / "…" quotes
 * ("…" knows \n, \" and \\), # comments and blank lines. A bad line is an error naming its number,
 * never its text (it may hold a secret).
 */
export function parseEnvFile(text: string, name = '.env'): Map<string, string> {
  const out = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const body = line.startsWith('export ') ? line.slice(7).trimStart() : line;
    const eq = body.indexOf('=');
    const key = eq > 0 ? body.slice(0, eq).trim() : '';
    if (!NAME.test(key)) throw new VibeboxError('E_KEYS_INVALID', `${name} line ${i + 1} is not KEY=value`, `fix or remove that line of ${name}`);
    let v = body.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) {
      v = v.slice(1, -1).replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    } else if (v.startsWith("'") && v.endsWith("'") && v.length >= 2) {
      v = v.slice(1, -1);
    } else {
      // An unquoted value ends at a comment that follows whitespace, as in shells.
      v = v.replace(/\s+#.*$/, '');
    }
    out.set(key, v);
  });
  return out;
}

/** The keys, or none when the file does not exist. Refused when others may read it or it is not the user's. */
export function readKeys(file: string = keysFile()): Map<string, string> {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw e;
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) throw new VibeboxError('E_KEYS_UNSAFE', `${file} belongs to another user (uid ${st.uid})`, `make it yours: chown $(id -u) ${file}`);
  if ((st.mode & 0o077) !== 0) {
    throw new VibeboxError('E_KEYS_UNSAFE', `${file} is readable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): its keys were not used`, `run chmod 600 ${file}`);
  }
  return parseEnvFile(readFileSync(file, 'utf8'), file);
}

/** What one `vibebox run` hands over: the values in the exec's env, the names to pass into the container. */
export function runKeys(file: string = keysFile()): { env: Record<string, string>; pass: string[] } {
  const keys = readKeys(file);
  return { env: Object.fromEntries(keys), pass: [...keys.keys()] };
}
