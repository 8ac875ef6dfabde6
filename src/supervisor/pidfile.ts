// Pid files are the VM driver's business; kept here as a re-export for host-side callers.
export { readPid, alive, cmdline, aliveAs } from '../../qemu/pidfile.js';
