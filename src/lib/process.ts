/**
 * Tells whether no process with this id runs on this host. Probing a process of another user fails
 * with EPERM, so such a process counts as running.
 */
export function processIsGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
