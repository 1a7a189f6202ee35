import { errorText, getSection } from './api.js';
import { message, table } from './components.js';
import { h, replaceContent, timeCell, utc } from './dom.js';
import { RejectedRequests } from './rejections.js';
import type { View } from './view.js';

interface ScheduleEntry {
  name: string;
  provider: string;
  rotation_strategy: string;
  next_rotation_at: string;
  overdue_hours: number;
}

interface SchedulerState {
  leader: { owner: string; expires_at: string } | null;
  jobs: Array<{ name: string; schedule: string; timezone: string | null; last_run_at: string | null; last_status: string | null; last_error: string | null; next_run_at: string | null }>;
}

function credentialLink(name: string): HTMLElement {
  return h('a', { href: `#/credential/${encodeURIComponent(name)}` }, name);
}

/** Builds the schedule page: upcoming and overdue rotations (GET /rotation/schedule) and the scheduler's jobs (GET /scheduler, audit:read). */
export function scheduleView(): View {
  const overdueArea = h('div');
  const upcomingArea = h('div');
  const jobsArea = h('div');

  const rejected = new RejectedRequests();

  async function load(reloading = false): Promise<void> {
    const schedule = getSection<{ upcoming_rotations: ScheduleEntry[]; overdue_rotations: ScheduleEntry[] }>(rejected, '/rotation/schedule?limit=200', reloading, (data) => {
      replaceContent(overdueArea, table('Overdue rotations', ['Credential', 'Provider', 'Strategy', 'Due', 'Overdue by'], data.overdue_rotations.map((entry) => [
        credentialLink(entry.name), entry.provider, entry.rotation_strategy, utc(entry.next_rotation_at), `${entry.overdue_hours} h`,
      ]), 'No rotation is overdue.'));
      replaceContent(upcomingArea, table('Upcoming rotations', ['Credential', 'Provider', 'Strategy', 'Due'], data.upcoming_rotations.map((entry) => [
        credentialLink(entry.name), entry.provider, entry.rotation_strategy, timeCell(entry.next_rotation_at),
      ]), 'No rotation is scheduled.'));
    }, (error) => {
      replaceContent(overdueArea);
      replaceContent(upcomingArea, message('error', errorText(error)));
    });
    const jobs = getSection<SchedulerState>(rejected, '/scheduler', reloading, (data) => {
      replaceContent(jobsArea,
        h('p', {}, data.leader ? `Leader: ${data.leader.owner} (lease until ${utc(data.leader.expires_at)})` : 'No process holds the scheduler lease.'),
        table('Scheduler jobs', ['Job', 'Schedule', 'Last run', 'Last outcome', 'Next run'], data.jobs.map((job) => [
          job.name,
          `${job.schedule}${job.timezone ? ` (${job.timezone})` : ''}`,
          timeCell(job.last_run_at),
          job.last_status ? `${job.last_status}${job.last_error ? `: ${job.last_error}` : ''}` : '—',
          timeCell(job.next_run_at, '—'),
        ])));
    }, (error) => replaceContent(jobsArea, message('error', errorText(error))));
    await Promise.all([schedule, jobs]);
  }

  const root = h('section', { 'aria-labelledby': 'schedule-title' },
    h('h1', { id: 'schedule-title', tabindex: '-1' }, 'Rotation schedule'),
    h('h2', {}, 'Overdue'), overdueArea,
    h('h2', {}, 'Upcoming'), upcomingArea,
    h('h2', {}, 'Scheduler jobs'), jobsArea,
  );
  return { root, load: () => load(), refresh: () => load(true), title: 'Rotation schedule' };
}
