import type { Kysely } from 'kysely';

/**
 * Adds `aegis_apply_intents`: one row per n8n apply that is under way, written before AEGIS contacts
 * n8n and deleted once the apply's audit entry is committed. A row left by a process that stopped in
 * between tells recovery which apply may lack its entry, and under which entry id it would be stored.
 */
export async function up(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const id = dialect === 'postgres' ? 'uuid' : 'text';
  const instant = dialect === 'postgres' ? 'timestamptz' : 'text';
  await db.schema
    .createTable('aegis_apply_intents')
    // The id the apply's audit entry gets, chosen before the apply starts.
    .addColumn('audit_entry_id', id, (col) => col.primaryKey())
    .addColumn('credential_id', id, (col) => col.notNull())
    .addColumn('credential_name', 'text', (col) => col.notNull())
    // The node's credentials entry the apply sets: the n8n type and the n8n credential id.
    .addColumn('credential_type', 'text', (col) => col.notNull())
    .addColumn('n8n_credential_id', 'text', (col) => col.notNull())
    .addColumn('workflow_id', 'text', (col) => col.notNull())
    .addColumn('node_name', 'text', (col) => col.notNull())
    .addColumn('requested_by', 'text')
    .addColumn('actor', 'text', (col) => col.notNull())
    .addColumn('ip_address', 'text')
    // The process running the apply, named as lease owners are (`processOwner`).
    .addColumn('owner', 'text', (col) => col.notNull())
    .addColumn('started_at', instant, (col) => col.notNull())
    .execute();
}
