import { sql, type Kysely } from 'kysely';

/**
 * Adds one delivery row per alert and sink, so each sink keeps its own attempts and backoff. A sink
 * that is down delays only its own copy of an alert, and a row marked delivered is not sent again.
 * Rows are created by the alert service the first time it sees an alert for a configured sink.
 */
export async function up(db: Kysely<any>, dialect: 'sqlite' | 'postgres'): Promise<void> {
  const pg = dialect === 'postgres';
  const id = pg ? 'uuid' : 'text';
  const instant = pg ? 'timestamptz' : 'text';

  await db.schema
    .createTable('aegis_alert_deliveries')
    .addColumn('alert_id', id, (col) => col.notNull().references('aegis_alert_outbox.id').onDelete('cascade'))
    // `hermes`, `event_bus`, or `webhook:<host>:<hash of the URL>`; see src/alerts/sinks/.
    .addColumn('sink', 'text', (col) => col.notNull())
    .addColumn('state', 'text', (col) => col.notNull().defaultTo('pending').check(sql`state in ('pending', 'delivered', 'dead')`))
    .addColumn('attempts', 'integer', (col) => col.notNull().defaultTo(0))
    .addColumn('next_attempt_at', instant, (col) => col.notNull())
    .addColumn('last_error', 'text')
    .addColumn('delivered_at', instant)
    .addPrimaryKeyConstraint('aegis_alert_deliveries_pkey', ['alert_id', 'sink'])
    .execute();
  // Delivery runs look up the pending rows that are due, oldest first.
  await db.schema.createIndex('idx_alert_deliveries_due').on('aegis_alert_deliveries').columns(['state', 'next_attempt_at']).execute();
}
