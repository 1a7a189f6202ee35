import { h, type Child } from './dom.js';
import { displayOf } from './status.js';

/**
 * Builds a status light with its text label, so colour is never the only signal. Red covers two statuses,
 * so the status itself follows the label there.
 */
export function statusBadge(status: string): HTMLElement {
  const { colour, label } = displayOf(status);
  const suffix = colour === 'red' ? ` (${status})` : '';
  return h('span', { class: `status status-${colour}`, 'data-status': status, 'data-colour': colour },
    h('span', { class: `light light-${colour}`, 'aria-hidden': 'true' }),
    h('span', { class: 'status-label' }, `${label}${suffix}`),
  );
}

/** Builds a table with a caption and header cells; `rows` are arrays of cells. */
export function table(caption: string, headers: string[], rows: Child[][], empty = 'Nothing to show.'): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'muted' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, headers.map((text) => h('th', { scope: 'col' }, text)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell) => h('td', {}, cell))))),
    ),
  );
}

/** Builds a message area read out by screen readers; `error` makes it an alert. */
export function message(kind: 'info' | 'success' | 'error', text: string): HTMLElement {
  return h('p', { class: `message message-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}

/**
 * Asks for confirmation in a modal dialog and resolves true when the user confirms. The dialog
 * traps focus while open, Escape cancels, and focus returns to the element that opened it.
 */
export function confirmAction(title: string, body: string, confirmLabel: string, extra?: HTMLElement): Promise<boolean> {
  return new Promise((resolve) => {
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
    const confirm = h('button', { type: 'submit', class: 'danger' }, confirmLabel);
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'confirm-title' }, title),
      h('p', { id: 'confirm-body' }, body),
      extra ?? null,
      h('div', { class: 'actions' }, cancel, confirm),
    );
    const dialog = h('dialog', { 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-body', class: 'confirm' }, form);
    let confirmed = false;
    form.addEventListener('submit', () => {
      confirmed = true;
    });
    cancel.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      dialog.remove();
      opener?.focus();
      resolve(confirmed);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** Builds a labelled form control: the label's `for` points at the control's id. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  if (hint) control.setAttribute('aria-describedby', `${id}-hint`);
  return h('div', { class: 'field' },
    h('label', { for: id }, label),
    control,
    hint ? h('small', { id: `${id}-hint`, class: 'muted' }, hint) : null,
  );
}

/** Builds a select with the given options (value and text); the first is selected unless `selected` names one. */
export function select(name: string, options: Array<[string, string]>, selected = ''): HTMLSelectElement {
  return h('select', { name }, options.map(([value, text]) => h('option', { value, selected: value === selected }, text)));
}
