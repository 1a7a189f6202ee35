import { matchesNamePattern } from '../lib/names.js';
import type { Scope } from './scopes.js';

/** The identity behind a call: the token's actor, what the token allows, and the client address. */
export interface Caller {
  actor: string;
  tokenId: string | null;
  scopes: Scope[];
  /** When not empty, the token reaches only credentials whose name matches one of these globs ... */
  namePatterns: string[];
  /** ... or that carry one of these tags. With both lists empty it reaches every credential. */
  tags: string[];
  ipAddress: string | null;
}

/** Creates a caller for commands run on the server itself (`aegis credentials ...`), with every scope. */
export function localCaller(actor: string): Caller {
  return { actor, tokenId: null, scopes: ['admin'], namePatterns: [], tags: [], ipAddress: null };
}

/** Tells whether the caller's token limits let it reach a credential with this name and these tags. */
export function callerReaches(caller: Caller, credential: { name: string; tags: ReadonlyArray<string> }): boolean {
  if (caller.namePatterns.length === 0 && caller.tags.length === 0) return true;
  if (caller.namePatterns.some((pattern) => matchesNamePattern(credential.name, pattern))) return true;
  return caller.tags.some((tag) => credential.tags.includes(tag));
}
