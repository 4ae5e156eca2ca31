/**
 * Subscription filters. A filter has up to three fields and an event must pass every field that is present:
 *
 *   - `types`: the event type equals one of the entries, or matches one of them as a pattern. Patterns are
 *     dot-separated segments like event types; a `*` segment matches exactly one segment, and `**` — allowed only
 *     as the last segment — matches one or more segments. So `github.issue.*` matches `github.issue.upserted` but
 *     not `github.issue` or `github.issue.comment.created`; `github.**` matches every type under `github.`; `**`
 *     matches every type. Partial wildcards (`github.issue.up*`) are not patterns and are refused.
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

const LITERAL_SEGMENT = /^[a-z][a-z0-9_]*$/;

/** Why `pattern` is not a valid type or type pattern, or `undefined` when it is. Short: it ends up in close reasons. */
export function typePatternProblem(pattern: string): string | undefined {
  const segments = pattern.split('.');
  for (const [index, segment] of segments.entries()) {
    if (segment === '*') continue;
    if (segment === '**') {
      if (index !== segments.length - 1) return '** is only allowed as the last segment';
      continue;
    }
    if (!LITERAL_SEGMENT.test(segment)) return 'expected lower-case segments, * or a trailing **';
  }
  return undefined;
}

function isPattern(pattern: string): boolean {
  return pattern.includes('*');
}

/** Segments are `[a-z0-9_]`, `*` or `**`, so the regular expression needs no escaping. */
function patternSource(pattern: string): string {
  return pattern
    .split('.')
    .map((segment) => (segment === '**' ? '.+' : segment === '*' ? '[^.]+' : segment))
    .join('\\.');
}

/**
 * Event types come from the topic catalog, so a matcher sees few distinct ones; remembering each answer makes
 * pattern matching a map lookup. The bound only guards against a catalog that grows without limit.
 */
const TYPE_CACHE_LIMIT = 512;

/** Compiles `types` (already checked with `typePatternProblem`) into a predicate on the event type. */
export function compileTypes(types: readonly string[]): (type: string) => boolean {
  const exact = new Set(types.filter((type) => !isPattern(type)));
  const patterns = types.filter(isPattern);
  if (patterns.length === 0) return (type) => exact.has(type);
  const regex = new RegExp(`^(?:${patterns.map(patternSource).join('|')})$`);
  const cache = new Map<string, boolean>();
  return (type) => {
    const known = cache.get(type);
    if (known !== undefined) return known;
    const result = exact.has(type) || regex.test(type);
    if (cache.size < TYPE_CACHE_LIMIT) cache.set(type, result);
    return result;
  };
}

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
