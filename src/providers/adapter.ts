import type { Credential, Provider } from '../registry/credential.types.js';

/** Capabilities of an adapter. The rotation engine and health monitor choose their steps from them. */
export interface ProviderCapabilities {
  /** Check that a value works (log in, call a test endpoint, read the file). */
  test: boolean;
  /** Put a value AEGIS chose (generated, supplied or an older version) into the provider. */
  setValue: boolean;
  /** Ask the provider for a new value (an API's rotation endpoint). */
  issueValue: boolean;
  /** Invalidate an old value at the provider. */
  revoke: boolean;
  /** Attach the credential to a workflow node. */
  apply: boolean;
  /** List the provider's credentials for a sync. */
  list: boolean;
  /**
   * Revoke the old value after every committed rotation, not only emergency ones. For providers where an
   * old key must not outlive its replacement, such as Supabase secret keys.
   */
  revokeAfterRotation?: boolean;
}

export interface TestResult {
  healthy: boolean;
  /** True when the credential has no test configured: nothing was checked, and health is unknown. */
  skipped?: boolean;
  responseTimeMs: number;
  /** Details safe to store and show: status codes, row counts, never a value. */
  details: Record<string, unknown>;
  error: string | null;
}

/**
 * One kind of place a credential lives. Every method receives the credential (with its validated
 * `providerConfig`) and the value in question; none may log, store or return a value.
 */
export interface ProviderAdapter {
  readonly provider: Provider;
  readonly capabilities: ProviderCapabilities;
  /** The reason the adapter declares no capabilities here (a missing setting), named when a call is rejected. */
  readonly unavailableReason?: string;
  /** Checks and normalizes `provider_config` at create and update time; errors name the field. */
  checkConfig(config: Record<string, unknown>): Record<string, unknown>;
  /**
   * Asks the provider whether the normalized `provider_config` names something AEGIS may change, at
   * create and update time; errors name the field. A provider that cannot be reached passes, because
   * the adapter checks again before it writes.
   */
  checkTarget?(config: Record<string, unknown>): Promise<void>;
  /**
   * Identifies the place at the provider that a normalized `provider_config` writes to, so that two
   * credentials cannot manage the same one: a rotation of one would overwrite the other's value.
   */
  targetOf?(config: Record<string, unknown>): ProviderTarget;
  /** Rejects a value this provider cannot be given with a ValidationError naming `value`. Rotation calls it before writing anything. */
  checkValue?(value: string, credential: Credential): void;
  /**
   * True where checkValue states what every value of the provider must be (an n8n value is the JSON
   * object of its data, an api value sent in a header is header-safe), so create and update check values
   * with it as well. Default false: a value that one .env file cannot hold may still be recorded.
   */
  readonly checkValueOnStore?: boolean;
  /**
   * False where a generated random value cannot be the credential's value (an n8n credential's value
   * is the JSON object of its data), so a rotation needs the value in the request. Default true.
   */
  readonly takesGeneratedValues?: boolean;
  test?(credential: Credential, value: string | null): Promise<TestResult>;
  /** Returns a ProviderMove when the provider could only replace the credential under a new id (n8n without PATCH). */
  setValue?(credential: Credential, value: string, previous: string | null): Promise<void | ProviderMove>;
  /** Returns the new value; `current` authenticates the request where the provider needs it. */
  issueValue?(credential: Credential, current: string | null): Promise<string>;
  revoke?(credential: Credential, oldValue: string, newValue: string): Promise<void>;
}

/** A place at the provider that a credential's value is written to. */
export interface ProviderTarget {
  /** Equal for two settings that write to the same place. */
  key: string;
  /** The `provider_config` field a conflict is reported on. */
  field: string;
  /** The place in words, for messages, e.g. `role app on connection "default"`. */
  description: string;
}

/** The provider's new id for a credential that `setValue` replaced instead of changing in place. */
export interface ProviderMove {
  providerCredentialId: string;
}

/** Every provider has an adapter: a missing entry is a compile error. */
export type AdapterRegistry = Record<Provider, ProviderAdapter>;

/**
 * The state a failed call left at the provider, where the adapter can tell. `unchanged` means nothing was
 * written. `unknown` means the call timed out or its connection dropped after the change was sent, so
 * the change may still take effect later. `left_changed` means the call changed the provider part-way
 * and could not undo it (an n8n replace), and the message names what was left changed.
 */
export type ProviderEffect = 'unchanged' | 'unknown' | 'left_changed';

/** A provider call that failed; the message is already stripped of values. */
export class ProviderError extends Error {
  readonly effect: ProviderEffect | undefined;

  constructor(message: string, effect?: ProviderEffect) {
    super(message);
    this.name = 'ProviderError';
    this.effect = effect;
  }
}

/** Returns the effect a failed provider call reported, or undefined when it reported none. */
export function effectOf(error: unknown): ProviderEffect | undefined {
  return error instanceof ProviderError ? error.effect : undefined;
}

/** Measures how long `run` takes, in whole milliseconds, on the monotonic clock. */
export async function timed<T>(run: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const started = performance.now();
  const result = await run();
  return { result, ms: Math.round(performance.now() - started) };
}

export const noCapabilities: ProviderCapabilities = { test: false, setValue: false, issueValue: false, revoke: false, apply: false, list: false };
