/**
 * Removes known secret values from a text before it is logged or stored, in the three forms
 * they tend to leak in: plain, base64 and URL-encoded. Upstream error messages are the usual carrier.
 * A secret that is a JSON object (an n8n credential's data) also has each of its string members
 * removed, because an upstream message may quote one member, such as an access token, on its own.
 */
export function scrubSecrets(text: string, secrets: ReadonlyArray<string>): string {
  let scrubbed = text;
  for (const secret of secrets) {
    // The whole secret first: once a member is replaced, the whole one no longer matches.
    for (const part of [secret, ...jsonMembers(secret)]) {
      if (part.length < minSecretLength) continue;
      for (const form of secretForms(part)) {
        scrubbed = scrubbed.split(form).join('[REDACTED]');
      }
    }
  }
  return scrubbed;
}

export function secretForms(secret: string): string[] {
  const forms = new Set([secret, Buffer.from(secret, 'utf8').toString('base64'), encodeURIComponent(secret)]);
  return [...forms];
}

/**
 * The length of the shortest text that is removed. Shorter members of a JSON secret tend to be
 * settings such as a region "eu" or a version "v2", not secrets, and removing them would blank out
 * those letters all over the message.
 */
const minSecretLength = 4;

/** Returns the string values at any depth of a secret that is a JSON object, or none for any other secret. */
function jsonMembers(secret: string): string[] {
  if (!secret.trimStart().startsWith('{')) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(secret);
  } catch {
    return [];
  }
  const members: string[] = [];
  collectStrings(parsed, members);
  // Sorted by length, longest first, so a member that contains another is removed whole, not around the shorter one.
  return members.sort((a, b) => b.length - a.length);
}

function collectStrings(node: unknown, into: string[]): void {
  if (typeof node === 'string') {
    into.push(node);
  } else if (Array.isArray(node)) {
    for (const item of node) collectStrings(item, into);
  } else if (typeof node === 'object' && node !== null) {
    for (const item of Object.values(node)) collectStrings(item, into);
  }
}
