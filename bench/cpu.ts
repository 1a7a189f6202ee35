import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/**
 * CPU time of processes and threads, read from /proc (Linux only, as the benchmarks are). On the
 * shared machines here, the bare route's throughput moved by up to a third between runs. The CPU time
 * a server spends per response moves far less, so the read benchmarks report it beside their
 * requests per second.
 */

/** Microseconds per clock tick, the unit of the times in /proc/<pid>/stat. */
const microsPerTick = 1e6 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** Returns user plus system time in microseconds from the text of a /proc stat file. */
function statMicros(stat: string): number {
  // The fields after the command name, which is in brackets and may hold spaces: utime is the 12th
  // and stime the 13th of them.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * microsPerTick;
}

function readMicros(file: string): number {
  try {
    return statMicros(fs.readFileSync(file, 'utf8'));
  } catch {
    // The thread or process ended between listing and reading.
    return 0;
  }
}

/** CPU time of a process so far, in microseconds: its main thread (the event loop) and all its threads. */
export interface ProcessCpu {
  main: number;
  all: number;
}

export function processCpu(pid: number): ProcessCpu {
  let all = 0;
  for (const thread of fs.readdirSync(`/proc/${pid}/task`)) all += readMicros(`/proc/${pid}/task/${thread}/stat`);
  return { main: readMicros(`/proc/${pid}/task/${pid}/stat`), all };
}

/** CPU time so far, in microseconds, of every process named `name` (PostgreSQL's server processes, say). */
export function processesCpu(name: string): number {
  let total = 0;
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let comm: string;
    try {
      comm = fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm === name) total += readMicros(`/proc/${entry}/stat`);
  }
  return total;
}
