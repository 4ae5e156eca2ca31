import type { Envelope, ProjectionName, TopicSpec } from '@switchyard/events';
import type pg from 'pg';

/** A decoded event and where it sat in Kafka: what a projection gets to apply. */
export interface PositionedEvent<E extends Envelope = Envelope> {
  readonly event: E;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** The record's JSON text as it arrived, when there is one (projections may pass it to Postgres as is). */
  readonly raw?: string;
}

/** Physical table names of a projection; a rebuild writes the same rows into shadow tables. */
export type TableMap<T extends string> = Readonly<Record<T, string>>;

/** One SQL statement with its parameters. */
export interface Statement {
  readonly text: string;
  readonly values: readonly unknown[];
}

/**
 * A projection folds events from one or more catalog topics into its tables. `statements` is pure: it turns a
 * batch into a bounded number of set-based statements — never one per event — which the worker builds before it
 * opens the transaction (that also advances the consumer position) and then runs in it.
 */
export interface Projection<T extends string = string> {
  readonly name: ProjectionName;
  readonly topics: readonly TopicSpec[];
  /**
   * Topics whose undecodable records another service answers: the adapter rejects and dead-letters bad commands,
   * so here they are only skipped and counted, not dead-lettered a second time.
   */
  readonly undecodableHandledElsewhere?: readonly TopicSpec[];
  /** Logical table → its name in the schema, in dependency order. */
  readonly tables: TableMap<T>;
  statements(events: readonly PositionedEvent[], tables: TableMap<T>): Statement[];
}

export async function runStatements(client: pg.ClientBase, statements: readonly Statement[]): Promise<void> {
  for (const statement of statements) await client.query(statement.text, [...statement.values]);
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
