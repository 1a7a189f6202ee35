/** DOM helpers. Text is always set as text nodes, never parsed as HTML, so names and messages cannot inject markup. */

export type Child = Node | string | number | null | undefined | false | Child[];

type Props = Record<string, unknown>;

/**
 * Creates an element. `on…` props become event listeners, and `value` and `checked` are set as properties.
 * Every other prop is an attribute: `true` gives a bare attribute, and null, undefined and false omit it.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2).toLowerCase(), value as EventListener);
    } else if (key === 'value' || key === 'checked') {
      (element as unknown as Record<string, unknown>)[key] = value;
    } else {
      element.setAttribute(key, value === true ? '' : String(value));
    }
  }
  appendChildren(element, children);
  return element;
}

export function appendChildren(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(parent, child);
    else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * Replaces the children of `container` and, when the focused element inside it carried a
 * `data-focus-key`, focuses the new element with the same key, so a poll does not move the keyboard focus.
 */
export function replaceContent(container: Element, ...children: Child[]): void {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && container.contains(active) ? active.dataset.focusKey : undefined;
  const fragment = document.createDocumentFragment();
  appendChildren(fragment, children);
  container.replaceChildren(fragment);
  if (key !== undefined) {
    const again = container.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(key)}"]`);
    again?.focus();
  }
}

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const units: Array<[Intl.RelativeTimeFormatUnit, number]> = [
  ['day', 86_400_000],
  ['hour', 3_600_000],
  ['minute', 60_000],
];

/** Formats the distance from now to an instant, e.g. "in 3 days" or "5 hours ago". */
export function relativeTime(iso: string, now = Date.now()): string {
  const diff = new Date(iso).getTime() - now;
  for (const [unit, ms] of units) {
    if (Math.abs(diff) >= ms) return relative.format(Math.trunc(diff / ms), unit);
  }
  return relative.format(Math.trunc(diff / 1000), 'second');
}

/** Builds a `<time>` element showing the relative time, with the exact UTC instant as its tooltip; "never" for null. */
export function timeCell(iso: string | null | undefined, never = 'never'): Node {
  if (!iso) return h('span', { class: 'muted' }, never);
  return h('time', { datetime: iso, title: iso }, relativeTime(iso));
}

/** Formats an instant as "2026-06-01 12:00:00 UTC". */
export function utc(iso: string | null | undefined): string {
  if (!iso) return '—';
  return `${iso.slice(0, 19).replace('T', ' ')} UTC`;
}

/** Starts a download of `text` as a file, built in the browser (no request). */
export function download(filename: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h('a', { href: url, download: filename, hidden: true });
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
