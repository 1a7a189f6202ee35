import type { Executor } from '../db/database.js';
import { toIso } from '../db/values.js';

export type MasterKeyState = 'current' | 'active' | 'retired';

export interface MasterKeyRecord {
  keyId: string;
  state: MasterKeyState;
  checkValue: string;
  source: string;
  kdfSalt: string | null;
  createdAt: string;
  retiredAt: string | null;
}

export async function listMasterKeys(db: Executor): Promise<MasterKeyRecord[]> {
  const rows = await db.selectFrom('aegis_master_keys').selectAll().orderBy('created_at').execute();
  return rows.map((row) => ({
    keyId: row.key_id,
    state: row.state as MasterKeyState,
    checkValue: row.check_value,
    source: row.source,
    kdfSalt: row.kdf_salt,
    createdAt: toIso(row.created_at),
    retiredAt: toIso(row.retired_at),
  }));
}

export async function currentMasterKeyId(db: Executor): Promise<string> {
  const row = await db.selectFrom('aegis_master_keys').select('key_id').where('state', '=', 'current').executeTakeFirst();
  if (!row) throw new Error('The vault has no current master key; run `aegis serve` or `aegis init` once to register one.');
  return row.key_id;
}

export async function insertMasterKey(db: Executor, key: Omit<MasterKeyRecord, 'retiredAt'>): Promise<void> {
  await db
    .insertInto('aegis_master_keys')
    .values({
      key_id: key.keyId,
      state: key.state,
      check_value: key.checkValue,
      source: key.source,
      kdf_salt: key.kdfSalt,
      created_at: key.createdAt,
    })
    .execute();
}

export async function setMasterKeyState(db: Executor, keyId: string, state: MasterKeyState, at: string): Promise<void> {
  await db
    .updateTable('aegis_master_keys')
    .set({ state, retired_at: state === 'retired' ? at : null })
    .where('key_id', '=', keyId)
    .execute();
}
