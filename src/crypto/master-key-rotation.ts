import { setTimeout as delay } from 'node:timers/promises';
import type { KeySource } from '../config/config.js';
import type { Db, Executor } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import { acquireLease, findLease, ownerProcessIsGone, processOwner, releaseLease, renewLease, stillHolds, takeOverLease, type Lease } from '../leases/leases.repository.js';
import { AegisError, ConflictError, StartupError, ValidationError } from '../lib/errors.js';
import { EnvelopeError } from './envelope.js';
import { generateMasterKey, keyCheckValue, newKeyId, newSalt } from './key-material.js';
import { appendKeyToFile, describeKeySource, readKeyCandidates } from './key-sources.js';
import { KeyUnavailableError, type Keyring } from './keyring.js';
import { insertMasterKey, listMasterKeys, setMasterKeyState } from './master-keys.repository.js';

export interface MasterKeyRotationResult {
  newKeyId: string;
  rewrapped: number;
  retiredKeyIds: string[];
}

export interface MasterKeyRotationOptions {
  /** Rows re-wrapped per transaction. */
  batchSize?: number;
  /**
   * Wait before the final pass, in milliseconds, so that a write another process began under the old
   * key before the switch has committed and is re-wrapped too.
   */
  settleMs?: number;
  /** Called once the new key is current, before any value is re-wrapped (the CLI audits the rotation there). */
  onKeyCurrent?: (keyId: string) => Promise<void>;
}

/** The lease that lets one master key rotation run at a time, across processes. */
const rotationLeaseName = 'master-key-rotation';
/** How long the lease lasts without renewal; the rotation renews it after each batch. */
const rotationLeaseMs = 60_000;

/**
 * Rotates the master key online: adds a new key, makes it current, re-wraps every data key under it in
 * small transactions, then retires the old keys. Servers keep serving throughout: they find the new key
 * in the same source when they first meet it, and a value written meanwhile under the old key is caught
 * by the next pass.
 */
export async function rotateMasterKey(
  db: Db,
  keyring: Keyring,
  source: KeySource,
  clock: Clock,
  options: MasterKeyRotationOptions = {},
): Promise<MasterKeyRotationResult> {
  const batchSize = options.batchSize ?? 200;
  // A batch of 0 would re-wrap nothing and never finish.
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ValidationError('batch_size', `must be a whole number of at least 1, got ${batchSize}`);
  // Two rotations at once re-wrapped rows back and forth between their keys without end, or each
  // retired the other's key and left the vault without a current one.
  const lease = await takeRotationLease(db, clock);
  try {
    const keepLease = async () => {
      if (!(await renewLease(db.kysely, lease, rotationLeaseMs, clock.now()))) throw leaseLost();
    };
    const { keyId: newKeyId, key } = await addNewKey(db, source, clock);
    keyring.add(newKeyId, key);
    await db.kysely.transaction().execute(async (trx) => {
      await trx.updateTable('aegis_master_keys').set({ state: 'active' }).where('state', '=', 'current').execute();
      await setMasterKeyState(trx, newKeyId, 'current', clock.now().toISOString());
    });
    await options.onKeyCurrent?.(newKeyId);

    let rewrapped = 0;
    for (;;) {
      rewrapped += await rewrapAll(db, keyring, newKeyId, batchSize, keepLease);
      await delay(options.settleMs ?? 2_000);
      await keepLease();
      const left = await countOtherKeyRows(db, newKeyId);
      if (left === 0) break;
    }

    // Retired only while this rotation still holds the lease and its key is still current, in one
    // transaction: a rotation that took the lease over meanwhile must not lose its own current key.
    const retiredKeyIds = await db.kysely.transaction().execute(async (trx) => {
      const records = await listMasterKeys(trx);
      if (!(await stillHolds(trx, db.dialect, lease)) || records.find((record) => record.keyId === newKeyId)?.state !== 'current') throw leaseLost();
      const retired: string[] = [];
      for (const record of records) {
        if (record.keyId === newKeyId || record.state !== 'active') continue;
        await setMasterKeyState(trx, record.keyId, 'retired', clock.now().toISOString());
        retired.push(record.keyId);
      }
      return retired;
    });
    return { newKeyId, rewrapped, retiredKeyIds };
  } finally {
    // A failed release (the database went away) must not hide the rotation's own outcome; the lease
    // then expires after a minute.
    await releaseLease(db.kysely, lease).catch(() => {});
  }
}

function leaseLost(): ConflictError {
  return new ConflictError(
    'key_rotation_lease_lost',
    'Master key rotation stopped: another process took over its lease. The new key stays current unless that rotation replaced it, and no key was retired; run `aegis keys rotate` again once no other rotation runs.',
  );
}

/** Takes the rotation lease, or over from a holder on this host whose process is gone (a rotation killed part-way); 409 while another rotation runs. */
async function takeRotationLease(db: Db, clock: Clock): Promise<Lease> {
  const owner = processOwner();
  const lease = await acquireLease(db.kysely, rotationLeaseName, owner, rotationLeaseMs, clock.now());
  if (lease) return lease;
  const holder = await findLease(db.kysely, rotationLeaseName);
  const takenOver = holder !== undefined && ownerProcessIsGone(holder.owner) ? await takeOverLease(db.kysely, holder, owner, rotationLeaseMs, clock.now()) : null;
  if (takenOver) return takenOver;
  throw new ConflictError(
    'key_rotation_in_progress',
    `Another master key rotation is running (${holder?.owner ?? 'a process that just finished'}${holder ? `, lease until ${holder.expiresAt}` : ''}). Nothing was changed; run \`aegis keys rotate\` again once it has finished.`,
  );
}

async function addNewKey(db: Db, source: KeySource, clock: Clock): Promise<{ keyId: string; key: Buffer }> {
  const known = new Set((await listMasterKeys(db.kysely)).map((record) => record.checkValue));
  let key: Buffer;
  let kdfSalt: string | null = null;
  if (source.kind === 'file') {
    key = generateMasterKey();
    appendKeyToFile(source.path, key);
  } else if (source.kind === 'passphrase') {
    kdfSalt = newSalt();
    key = readKeyCandidates(source, [kdfSalt])[0]!.key;
  } else {
    const fresh = readKeyCandidates(source, []).find((candidate) => !known.has(keyCheckValue(candidate.key)));
    if (!fresh) {
      throw new StartupError(
        `The ${describeKeySource(source)} holds no new key. Add a new base64 key as another comma-separated entry, restart every AEGIS process with it, then run \`aegis keys rotate\` again.`,
      );
    }
    key = fresh.key;
  }
  const keyId = newKeyId();
  await insertMasterKey(db.kysely, {
    keyId,
    state: 'active',
    checkValue: keyCheckValue(key),
    source: source.kind,
    kdfSalt,
    createdAt: clock.now().toISOString(),
  });
  return { keyId, key };
}

async function rewrapAll(db: Db, keyring: Keyring, toKeyId: string, batchSize: number, keepLease: () => Promise<void>): Promise<number> {
  let total = 0;
  for (;;) {
    await keepLease();
    const done = await db.kysely.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('aegis_credential_versions')
        .select(['id', 'credential_id', 'version', 'encrypted_value', 'is_current'])
        .where('encrypted_value', 'is not', null)
        .where('encryption_key_id', '!=', toKeyId)
        // By credential, so the credential rows below are locked in id order, as lockCredentials does.
        .orderBy('credential_id')
        .orderBy('version')
        .limit(batchSize)
        .execute();
      for (const row of rows) {
        // Every change locks a credential's row before its versions (findCredentialForChange); taking
        // them in the other order here could deadlock with a PATCH on PostgreSQL.
        if (db.dialect === 'postgres') await trx.selectFrom('aegis_credentials').select('id').where('id', '=', row.credential_id).forNoKeyUpdate().execute();
        const context = { credentialId: row.credential_id, version: row.version };
        let envelope: string;
        try {
          envelope = await keyring.rewrap(row.encrypted_value!, context, toKeyId, trx);
        } catch (error) {
          if (!(error instanceof EnvelopeError || error instanceof KeyUnavailableError)) throw error;
          throw await rewrapFailure(trx, row, toKeyId, error);
        }
        // Compare-and-set on the old envelope: a row another process changed meanwhile is left to the next pass.
        await trx
          .updateTable('aegis_credential_versions')
          .set({ encrypted_value: envelope, encryption_key_id: toKeyId })
          .where('id', '=', row.id)
          .where('encrypted_value', '=', row.encrypted_value)
          .execute();
        await trx
          .updateTable('aegis_credentials')
          .set({ encrypted_value: envelope, encryption_key_id: toKeyId })
          .where('id', '=', row.credential_id)
          .where('encrypted_value', '=', row.encrypted_value)
          .execute();
      }
      return rows.length;
    });
    total += done;
    if (done < batchSize) return total;
  }
}

/**
 * Builds the error for a row that cannot be re-wrapped, naming the credential and version. Nothing is
 * retired in that case: the new key stays current and the old keys stay active until a later rotation.
 */
async function rewrapFailure(
  trx: Executor,
  row: { credential_id: string; version: number },
  toKeyId: string,
  cause: EnvelopeError | KeyUnavailableError,
): Promise<AegisError> {
  const credential = await trx.selectFrom('aegis_credentials').select('name').where('id', '=', row.credential_id).executeTakeFirst();
  const name = credential ? `"${credential.name}" (id ${row.credential_id})` : `id ${row.credential_id}`;
  const error = new AegisError(
    500,
    'rewrap_failed',
    `Master key rotation stopped: the stored value of credential ${name} version ${row.version} could not be re-wrapped under master key ${toKeyId} (${cause.message}). The new key stays current and no key was retired. Restore that row from a backup, or add its missing master key, then run \`aegis keys rotate\` again.`,
    { extra: { credential_id: row.credential_id, version: row.version } },
  );
  error.cause = cause;
  return error;
}

async function countOtherKeyRows(db: Db, keyId: string): Promise<number> {
  const row = await db.kysely
    .selectFrom('aegis_credential_versions')
    .select((eb) => eb.fn.countAll<string | number>().as('count'))
    .where('encrypted_value', 'is not', null)
    .where('encryption_key_id', '!=', keyId)
    .executeTakeFirstOrThrow();
  return Number(row.count);
}
