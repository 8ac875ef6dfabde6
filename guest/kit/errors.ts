// The kit runs inside the VM and imports nothing from src/, so it carries its own small error
// type with the same shape idea: a stable code plus a one-line message.
export class KitError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'KitError';
  }
}
