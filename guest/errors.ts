// Typed errors with stable codes (docs/architecture.md, Errors and output), on the lower side so images/, qemu/ and
// proxy/ can throw them without importing src/. A VibeboxError is a user-facing failure:
// printed as one line `vibebox: <message> (<hint>)`, never as a stack trace.

export type ErrorCode =
  | 'E_CONFIG_INVALID'
  | 'E_CONFIG_PARSE'
  | 'E_INDEX_CORRUPT'
  | 'E_SESSION_UNKNOWN'
  | 'E_SESSION_AMBIGUOUS'
  | 'E_SESSION_NONE'
  | 'E_SESSION_UNTRUSTED'
  | 'E_DISK_UNTRUSTED'
  | 'E_MOUNT_MISSING'
  | 'E_MOUNT_FORBIDDEN'
  | 'E_PROJECT_FORBIDDEN'
  | 'E_USAGE'
  | 'E_LOCKED'
  | 'E_NOT_CONFIRMED'
  // The user answered no to a question: nothing changed; not bad input (exit 1).
  | 'E_DECLINED'
  | 'E_NOT_APPROVED'
  | 'E_TOOL_MISSING'
  | 'E_VIRTIOFSD_MISSING'
  | 'E_NO_SPACE'
  | 'E_IMAGE_MISSING'
  | 'E_IMAGE_IN_USE'
  | 'E_IMAGE_BUILD'
  | 'E_VM_START'
  | 'E_SUPERVISOR'
  | 'E_SESSION_LOST'
  | 'E_PROTOCOL'
  | 'E_KEYS_INVALID'
  | 'E_KEYS_UNSAFE'
  | 'E_AGENT_UNKNOWN'
  | 'E_CONTAINER'
  // a host port taken by another program is a failure of the moment (exit 1), not bad input.
  | 'E_PORT_IN_USE'
  | 'E_PORT'
  | 'E_KIT'
  // The host's shared copy of an agent no longer matches what was fetched (exit 1).
  | 'E_AGENT_STORE'
  // A command that could not do what was asked and changed nothing (exit 1: the input was valid).
  | 'E_NOT_CHANGED'
  | 'E_INTERNAL';

/** Exit code 2 is bad input (the user can fix it); 1 is a failure of the machine or of vibebox. */
const BAD_INPUT: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'E_CONFIG_INVALID',
  'E_CONFIG_PARSE',
  'E_INDEX_CORRUPT',
  'E_SESSION_UNKNOWN',
  'E_SESSION_AMBIGUOUS',
  'E_SESSION_NONE',
  // A .vibebox/ or a disk vibebox did not make: the user deletes it (nothing was started).
  'E_SESSION_UNTRUSTED',
  'E_DISK_UNTRUSTED',
  'E_MOUNT_MISSING',
  'E_MOUNT_FORBIDDEN',
  'E_PROJECT_FORBIDDEN',
  'E_USAGE',
  'E_LOCKED',
  'E_NOT_CONFIRMED',
  'E_NOT_APPROVED',
  'E_TOOL_MISSING',
  'E_IMAGE_MISSING',
  'E_IMAGE_IN_USE',
  'E_KEYS_INVALID',
  'E_KEYS_UNSAFE',
  'E_AGENT_UNKNOWN',
  // Not here: E_SESSION_LOST, E_NO_SPACE and E_VIRTIOFSD_MISSING are failures of the machine
  // (exit 1), not bad input.
]);

export class VibeboxError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  constructor(code: ErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VibeboxError';
    this.code = code;
    this.hint = hint;
  }
  get exitCode(): number {
    return BAD_INPUT.has(this.code) ? 2 : 1;
  }
  /** The one line a user sees. */
  toLine(): string {
    return `vibebox: ${this.message}${this.hint ? ` (${this.hint})` : ''}`;
  }
}

export function isErrno(e: unknown, code: string): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === code;
}
