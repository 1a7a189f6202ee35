import { table } from './components.js';
import { h, utc } from './dom.js';

/** One stored check as GET /credentials/{name}/health-checks lists it. */
export interface HealthCheck {
  checked_at: string;
  status: 'healthy' | 'unhealthy' | 'unknown';
  response_time_ms: number | null;
  error_message: string | null;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const WIDTH = 480;
const HEIGHT = 160;
const PADDING = { top: 12, right: 12, bottom: 24, left: 48 };

/** Creates an SVG element with attributes only (no style attribute, which the CSP would block). */
function svg(tag: string, attributes: Record<string, string | number> = {}, ...children: Array<Node | string>): SVGElement {
  const element = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  for (const child of children) element.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
  return element;
}

/**
 * Draws the marker of one check: a circle when healthy, a cross when unhealthy and a square when unknown,
 * so the shape shows the status as well as the colour.
 */
function marker(check: HealthCheck, x: number, y: number): SVGElement {
  const label = `${utc(check.checked_at)}: ${check.status}, ${check.response_time_ms} ms`;
  const title = svg('title', {}, label);
  if (check.status === 'healthy') return svg('circle', { class: 'check-healthy', cx: x, cy: y, r: 4 }, title);
  if (check.status === 'unhealthy') {
    return svg('path', { class: 'check-unhealthy', d: `M${x - 4},${y - 4}L${x + 4},${y + 4}M${x - 4},${y + 4}L${x + 4},${y - 4}` }, title);
  }
  return svg('rect', { class: 'check-unknown', x: x - 3.5, y: y - 3.5, width: 7, height: 7 }, title);
}

/** Summarizes the checks in one sentence, the text alternative of the chart. */
export function summarizeChecks(checks: HealthCheck[], total: number): string {
  if (checks.length === 0) return 'No health checks yet.';
  const counts = { healthy: 0, unhealthy: 0, unknown: 0 };
  for (const check of checks) counts[check.status] += 1;
  const times = checks.map((check) => check.response_time_ms).filter((time): time is number => time !== null).sort((a, b) => a - b);
  const shown = checks.length < total ? `the ${checks.length} newest of ${total} checks` : `${checks.length} checks`;
  const span = `from ${utc(checks.at(-1)!.checked_at)} to ${utc(checks[0]!.checked_at)}`;
  const statuses = `${counts.healthy} healthy, ${counts.unhealthy} unhealthy, ${counts.unknown} unknown`;
  const timing = times.length === 0
    ? 'No check measured a response time.'
    : `Response time: minimum ${times[0]} ms, median ${times[Math.floor((times.length - 1) / 2)]} ms, maximum ${times.at(-1)} ms.`;
  return `Showing ${shown} ${span}: ${statuses}. ${timing}`;
}

/**
 * Builds a line chart of response times, oldest check on the left. Checks without a response time get
 * no point. The chart is described by the element with id `summaryId`.
 */
export function responseTimeChart(checks: HealthCheck[], summaryId: string): SVGElement {
  const oldestFirst = [...checks].reverse();
  const max = Math.max(1, ...oldestFirst.map((check) => check.response_time_ms ?? 0));
  const plotWidth = WIDTH - PADDING.left - PADDING.right;
  const plotHeight = HEIGHT - PADDING.top - PADDING.bottom;
  const xOf = (index: number) => PADDING.left + (oldestFirst.length === 1 ? plotWidth / 2 : (index * plotWidth) / (oldestFirst.length - 1));
  const yOf = (ms: number) => PADDING.top + plotHeight - (ms / max) * plotHeight;

  const points = oldestFirst.flatMap((check, index) => (check.response_time_ms === null ? [] : [{ check, x: xOf(index), y: yOf(check.response_time_ms) }]));
  const chart = svg('svg', { class: 'health-chart', viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-describedby': summaryId },
    svg('title', {}, 'Response time of each health check in milliseconds, oldest on the left'),
    svg('line', { class: 'axis', x1: PADDING.left, y1: PADDING.top + plotHeight, x2: WIDTH - PADDING.right, y2: PADDING.top + plotHeight }),
    svg('line', { class: 'axis', x1: PADDING.left, y1: PADDING.top, x2: PADDING.left, y2: PADDING.top + plotHeight }),
    svg('text', { class: 'axis-label', x: PADDING.left - 6, y: PADDING.top + 4, 'text-anchor': 'end' }, `${max} ms`),
    svg('text', { class: 'axis-label', x: PADDING.left - 6, y: PADDING.top + plotHeight, 'text-anchor': 'end' }, '0 ms'),
    svg('text', { class: 'axis-label', x: PADDING.left, y: HEIGHT - 6 }, 'oldest'),
    svg('text', { class: 'axis-label', x: WIDTH - PADDING.right, y: HEIGHT - 6, 'text-anchor': 'end' }, 'newest'),
  );
  if (points.length > 1) {
    chart.appendChild(svg('polyline', { class: 'response-line', points: points.map((point) => `${point.x.toFixed(1)},${point.y.toFixed(1)}`).join(' ') }));
  }
  for (const point of points) chart.appendChild(marker(point.check, point.x, point.y));
  return chart;
}

/** Builds the health-check section: the text summary, the chart beside it, and the checks as a table. */
export function healthHistory(checks: HealthCheck[], total: number): HTMLElement {
  const summaryId = 'health-summary';
  // The latest-check line above already shows "Not checked yet", so an empty history adds nothing.
  if (checks.length === 0) return h('div', { class: 'health-history' });
  return h('div', { class: 'health-history' },
    h('div', { class: 'health-overview' },
      h('p', { id: summaryId, class: 'health-summary' }, summarizeChecks(checks, total)),
      checks.length > 0 ? responseTimeChart(checks, summaryId) : null,
    ),
    table('Health checks, newest first', ['Checked', 'Status', 'Response time', 'Error'], checks.map((check) => [
      utc(check.checked_at),
      h('span', { class: `check-status check-status-${check.status}` }, check.status),
      check.response_time_ms === null ? '—' : `${check.response_time_ms} ms`,
      check.error_message ?? '—',
    ]), 'No health checks yet.'),
  );
}
