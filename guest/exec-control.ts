// What the guest agent can do to any running exec, wherever it runs: a process in the VM
// (process-exec.ts), a command in a container through Docker's exec (containers/container-exec.ts)
// or through the in-container runner (containers/runner-hub.ts), or a container operation
// (containers/ops.ts). One surface, so the agent's stream handling is written once.
export interface ExecControl {
  stdin(b: Buffer): void;
  stdinEnd(): void;
  resize(cols: number, rows: number): void;
  signal(sig: string): void;
  /** Stop reading the exec's output until resume(): a slow client pauses the guest, not memory. */
  pause(): void;
  resume(): void;
}
