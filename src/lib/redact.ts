/**
 * Removes known secret values from a text before it is logged or stored, in the three forms
 * they tend to leak in: plain, base64 and URL-encoded. Upstream error messages are the usual carrier.
 */
export function scrubSecrets(text: string, secrets: ReadonlyArray<string>): string {
  let scrubbed = text;
  for (const secret of secrets) {
    if (secret.length < 4) continue;
    for (const form of secretForms(secret)) {
      scrubbed = scrubbed.split(form).join('[REDACTED]');
    }
  }
  return scrubbed;
}

export function secretForms(secret: string): string[] {
  const forms = new Set([secret, Buffer.from(secret, 'utf8').toString('base64'), encodeURIComponent(secret)]);
  return [...forms];
}
