import { defineErrorCodes, errorClass } from '@switchyard/events';

export const syncErrors = defineErrorCodes('SYNC', {
  SYNC_DB_UNAVAILABLE: {
    retriable: true,
    meaning: 'Postgres refused or dropped the connection, or a transaction hit a deadlock or serialization failure.',
    fix: 'Nothing to do: the worker pauses the partition, retries with backoff and reports degraded on /readyz.',
  },
  SYNC_UNPROJECTABLE: {
    retriable: false,
    meaning: 'A valid event could not be written (Postgres rejected its values, e.g. a \\u0000 in JSON text).',
    fix: 'The record is on the dead-letter topic with the Postgres error; fix the producer and replay it.',
  },
  SYNC_MIGRATION_CHANGED: {
    retriable: false,
    meaning: 'An applied migration file was edited after it ran (its checksum differs).',
    fix: 'Migrations are forward-only: restore the file and add a new migration instead.',
  },
  SYNC_MIGRATION_FAILED: {
    retriable: false,
    meaning: 'A migration failed; its transaction was rolled back and the worker did not start.',
    fix: 'Read the Postgres error in the log, fix the migration, start again.',
  },
  SYNC_REBUILD_BUSY: {
    retriable: true,
    meaning: 'Another rebuild of the same projection is running.',
    fix: 'Wait for it to finish; its progress is in the log and in projection_rebuilds.',
  },
  SYNC_REBUILD_FAILED: {
    retriable: true,
    meaning: 'A projection rebuild stopped before the swap; the live table was not touched.',
    fix: 'Read the cause in the log and run the rebuild again.',
  },
  SYNC_REBUILD_INTERRUPTED: {
    retriable: true,
    meaning: 'The rebuild was stopped before the swap: the sync worker or switchyard-sync was asked to stop (or died) while it ran. The live tables were not touched.',
    fix: 'Send the rebuild again (a new command, or run the CLI again): an interrupted command is finished, not resumed.',
  },
  SYNC_REBUILD_UNSUPPORTED: {
    retriable: false,
    meaning: 'A materialized view depends on a projection table; the swap re-points views but cannot re-point it.',
    fix: 'Replace the materialized view with a view, or drop it before the rebuild and create it again after.',
  },
  SYNC_DATABASE_IN_USE: {
    retriable: false,
    meaning: 'Another deployment (another Kafka cluster or topic prefix) is using this database: its projections and positions would mix with this one\'s.',
    fix: 'Give this deployment its own database with DATABASE_URL, or stop the other; the message names its host, pid, Kafka cluster and topic prefix.',
  },
});

export const SyncError = errorClass('SyncError', syncErrors);
export type SyncError = InstanceType<typeof SyncError>;
