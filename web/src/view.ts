/** A page of the dashboard: its element, a first load, and a refresh the poller calls every few seconds. */
export interface View {
  root: HTMLElement;
  title: string;
  load(): Promise<void>;
  refresh(): Promise<void>;
}
