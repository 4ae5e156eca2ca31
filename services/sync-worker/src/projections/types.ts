import type { Envelope, ProjectionName, TopicSpec } from '@switchyard/events';
import type pg from 'pg';

/** A decoded event and where it sat in Kafka: what a projection gets to apply. */
export interface PositionedEvent<E extends Envelope = Envelope> {
  readonly event: E;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

/** Physical table names of a projection; a rebuild writes the same rows into shadow tables. */
export type TableMap<T extends string> = Readonly<Record<T, string>>;

/**
 * A projection folds events from one or more catalog topics into its tables. `apply` runs inside a transaction
 * the worker owns (which also advances the consumer position) and must issue a bounded number of set-based
 * statements per batch — never one per event.
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
  apply(client: pg.ClientBase, events: readonly PositionedEvent[], tables: TableMap<T>): Promise<void>;
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
