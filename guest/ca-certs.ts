// PEM certificate bundles as the host sends them and the guest checks them (pure, no I/O): the
// host's extra CA certificates travel in the agent's `setup` message.

/** Most bytes of PEM a setup message may carry (a full Mozilla bundle is ~220 kB). */
export const MAX_CA_PEM_BYTES = 1024 * 1024;
/** Most certificates in it. */
export const MAX_CAS = 1000;

const BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The certificates in a PEM text, as their base64 bodies without whitespace (the normal form two
 * bundles are compared in), first occurrence kept. Anything else in the text (comments, keys,
 * other PEM types) is ignored: hosts' bundles carry comments. Bodies that are not base64 are left out.
 */
export function pemBodies(text: string): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const body = (m[1] ?? '').replace(/\s+/g, '');
    if (body.length === 0 || !BASE64.test(body) || seen.has(body)) continue;
    seen.add(body);
    out.push(body);
  }
  return out;
}

/** One body as a PEM block with 64-column lines. */
export function renderPem(body: string): string {
  const lines = body.match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** Bodies as one bundle text (what the host sends). */
export function renderBundle(bodies: readonly string[]): string {
  return bodies.map(renderPem).join('');
}

/**
 * Strict check of a received bundle: nothing but CERTIFICATE blocks and whitespace, within the
 * size and count caps. Returns the bodies; throws with the reason otherwise.
 */
export function parseReceivedBundle(text: string): string[] {
  if (Buffer.byteLength(text, 'utf8') > MAX_CA_PEM_BYTES) throw new Error(`CA bundle larger than ${MAX_CA_PEM_BYTES} bytes`);
  const rest = text.replace(BLOCK, '').trim();
  if (rest.length > 0) throw new Error('CA bundle holds something other than PEM certificates');
  const blocks = [...text.matchAll(BLOCK)].length;
  const bodies = pemBodies(text);
  if (blocks !== 0 && bodies.length === 0) throw new Error('CA bundle holds no valid certificate');
  if (bodies.length > MAX_CAS) throw new Error(`CA bundle holds more than ${MAX_CAS} certificates`);
  // A duplicate is harmless; a block whose body is not base64 is not.
  const distinct = new Set([...text.matchAll(BLOCK)].map((m) => (m[1] ?? '').replace(/\s+/g, '')));
  if (distinct.size !== bodies.length) throw new Error('CA bundle holds a certificate that is not base64');
  return bodies;
}

/** What the guest must trust beyond its own bundle: the received ones its bundle lacks. */
export function extraBodies(received: readonly string[], guestBundle: ReadonlySet<string>): string[] {
  return received.filter((b) => !guestBundle.has(b));
}
