import type { Kysely } from 'kysely';

/**
 * Adds what the rotation engine needs: cron schedules with a time zone and a value policy on
 * credentials, and the actor, reason and attempt count on rotation history rows.
 */
export async function up(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const json = dialect === 'postgres' ? 'jsonb' : 'text';
  await db.schema.alterTable('aegis_credentials').addColumn('rotation_cron', 'text').execute();
  await db.schema.alterTable('aegis_credentials').addColumn('rotation_timezone', 'text').execute();
  await db.schema.alterTable('aegis_credentials').addColumn('value_policy', json).execute();
  await db.schema.alterTable('aegis_rotation_history').addColumn('actor', 'text').execute();
  await db.schema.alterTable('aegis_rotation_history').addColumn('reason', 'text').execute();
  await db.schema
    .alterTable('aegis_rotation_history')
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(1))
    .execute();
  await db.schema.createIndex('idx_rotation_history_rotated_at').on('aegis_rotation_history').column('rotated_at').execute();
  await db.schema.createIndex('idx_versions_created').on('aegis_credential_versions').column('created_at').execute();
}
