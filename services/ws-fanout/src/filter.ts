import { compileTypes } from '@switchyard/events';

export { compileTypes, typePatternProblem } from '@switchyard/events';

/**
 * Subscription filters. A filter has up to three fields and an event must pass every field that is present:
 *
 *   - `types`: the event type equals one of the entries, or matches one of them as a pattern
 *     (packages/events/src/type-patterns.ts: `*` one segment, a trailing `**` one or more).
 *   - `subjects`: the event's CloudEvents `subject` equals one of the entries (an entity key such as
 *     `github:issue:acme/widgets#1`, a command id, an API id). Events without a subject never match.
 *   - `correlationId`: the event's `correlationid` equals it (everything one request caused).
 *
 * An empty filter matches every event.
 */
export interface EventFilter {
  readonly types?: readonly string[] | undefined;
  readonly subjects?: readonly string[] | undefined;
  readonly correlationId?: string | undefined;
}

/** The envelope attributes a filter looks at. */
export interface MatchableEvent {
  readonly type: string;
  readonly subject?: string | undefined;
  readonly correlationid: string;
}

export type EventMatcher = (event: MatchableEvent) => boolean;

/** Compiles a validated filter into a predicate that reads only envelope attributes (no per-event JSON work). */
export function compileFilter(filter: EventFilter): EventMatcher {
  const matchType = filter.types === undefined ? undefined : compileTypes(filter.types);
  const subjects = filter.subjects === undefined ? undefined : new Set(filter.subjects);
  const correlationId = filter.correlationId;
  return (event) =>
    (matchType === undefined || matchType(event.type)) &&
    (subjects === undefined || (event.subject !== undefined && subjects.has(event.subject))) &&
    (correlationId === undefined || event.correlationid === correlationId);
}
