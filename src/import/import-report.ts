/** What an import did with each entry of its input. Never holds a value. */
export interface ImportReport {
  source: string;
  created: Array<{ name: string; detail?: string }>;
  skipped: Array<{ name: string; reason: string }>;
}

export function emptyReport(source: string): ImportReport {
  return { source, created: [], skipped: [] };
}
