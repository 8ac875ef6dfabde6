// Where the stack lives in the VM, named once: the guest agent (boot, :explain) reads the state
// file, the controller's container gets both directories bound (controller-container.ts).
export const VM_STATE_DIR = '/var/lib/vibebox/stack';
/** The controller's record (state.ts), as the VM sees it. */
export const VM_STATE_FILE = `${VM_STATE_DIR}/state.json`;
export const VM_SOCKET_DIR = '/run/vibebox/stack';
/** The controller's host-only API (apply/down/destroy), reached only through the supervisor. */
export const HOST_SOCKET = `${VM_SOCKET_DIR}/host.sock`;
