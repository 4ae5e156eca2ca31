import type { CommandInput, CommandType, EntityName, EntityVersion } from '@switchyard/events';
import type { ResponseHeaders, UpstreamError } from './errors.js';

/**
 * What a provider connector is: mostly a description, plus small pure functions — a command's input becomes a
 * request, an answer becomes the entity's full state and version, a refusal becomes a classified error, and a
 * write that cannot be repeated says how to find it again. The kit (connection.ts) owns everything else: the
 * socket pool, timeouts, retries and their waits, the circuit breaker, the concurrency cap and the rules that
 * carry a write out once.
 */

/** One HTTP request below a connection's base URL. */
export interface ProviderRequest {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Path and query, e.g. `/repos/acme/widgets/issues?state=all`. */
  readonly path: string;
  /** Sent as JSON (`json`) or form-encoded (`form`, nested keys already flattened: `metadata[plan]`). */
  readonly body?: { readonly json: unknown } | { readonly form: Readonly<Record<string, string>> };
  readonly headers?: Readonly<Record<string, string>>;
}

/** An answer, whatever its status; `body` is the parsed JSON (undefined when the body is not JSON). */
export interface ProviderAnswer {
  readonly status: number;
  readonly headers: ResponseHeaders;
  readonly body: unknown;
}

/** The full state of one entity as an answer describes it, ready to be an entity event. */
export interface EntityState {
  /** The catalog's entity name, e.g. `github.issue` (packages/events, `entityCatalog`). */
  readonly entity: EntityName;
  readonly entityId: string;
  readonly version: EntityVersion;
  /** Valid against the catalog's state schema for `entity`. */
  readonly state: unknown;
}

/** What a command handler knows about the command it carries out. */
export interface CommandContext {
  readonly commandId: string;
  /** The caller's idempotency key (the command id when none was given). */
  readonly idempotencyKey: string;
  /** When the answer arrived: the tiebreak of the entity's version. */
  readonly observedAt: Date;
}

/** Reads a lookup may make: GETs with the connection's retries, and the connection's own identity. */
export interface LookupRequester {
  /** A GET below the base URL; rejects with an UpstreamError when it cannot be answered. */
  get(path: string): Promise<ProviderAnswer>;
  /** Who the connection's credentials belong to (the connector's `identity`), fetched once and kept. */
  identity(): Promise<string>;
}

export type LookupResult = { readonly found: true; readonly entity: EntityState } | { readonly found: false };

/**
 * How a write is kept to one effect when an answer is lost:
 * - `repeatable`: sending it twice has the effect of once (setting fields to values, reads); it is simply sent again.
 * - `key`: the provider deduplicates on a key we send (`header`, with the command's idempotency key); sent again
 *   with the same key.
 * - `lookup`: the provider has neither; the request carries a marker (`request` puts the command id in it) and
 *   `find` looks for it. After a lost answer the write is sent again only once `find` says it is not there and
 *   the provider can no longer be carrying the lost request out (the connector's `settleMs`).
 */
export type Idempotency<T extends CommandType> =
  | { readonly kind: 'repeatable' }
  | { readonly kind: 'key'; readonly header: string }
  | {
      readonly kind: 'lookup';
      find(input: CommandInput<T>, context: { readonly commandId: string; readonly since: Date }, requester: LookupRequester): Promise<LookupResult>;
    };

/** One command type a connector carries out. */
export interface CommandHandler<T extends CommandType = CommandType> {
  readonly type: T;
  readonly idempotency: Idempotency<T>;
  request(input: CommandInput<T>, context: CommandContext): ProviderRequest;
  /** The entity state a 2xx answer describes; throws an UpstreamError (`badResponse`) when it describes none. */
  entity(answer: ProviderAnswer, input: CommandInput<T>, context: CommandContext): EntityState;
}

/** A connection's settings: where the provider is, and the credentials (a secret: it never leaves the connection). */
export interface ConnectionSettings {
  readonly baseUrl: string;
  readonly token: string;
}

export interface Connector {
  /** The provider id: the first word of its command types (`github` for `github.issue.create`). */
  readonly provider: string;
  /** How people name it in messages: `GitHub`. */
  readonly title: string;
  /** Used when a connection gives no base URL. */
  readonly defaultBaseUrl: string;
  /**
   * How long after a request began the provider can still carry it out. After a lost answer, a lookup that does
   * not find the write is trusted only once this has passed (GitHub ends every request after 10 s).
   */
  readonly settleMs: number;
  /** Headers of every request: authentication and versioning. Secrets are read here only. */
  headers(settings: ConnectionSettings): Readonly<Record<string, string>>;
  /** What a non-2xx answer means (rate limit, refusal, …). */
  classify(answer: ProviderAnswer, nowMs: number): UpstreamError;
  /** The request that tells who the credentials belong to, and how to read the answer (for lookups). */
  readonly identity?: { readonly request: ProviderRequest; read(answer: ProviderAnswer): string };
  readonly commands: { readonly [T in CommandType]?: CommandHandler<T> };
  // The ingest work adds here: webhooks (verify the raw bytes, map a delivery to entity events) and polls
  // (a page request from a cursor, the page's entities and the next cursor), stored and emitted by the kit.
}

/** Narrows a connector's handler table for one type. */
export function handlerFor<T extends CommandType>(connector: Connector, type: T): CommandHandler<T> | undefined {
  return connector.commands[type];
}
