/**
 * Type patterns, shared by stream subscriptions and API-key scopes. A pattern is dot-separated segments like an
 * event or command type; a `*` segment matches exactly one segment, and `**` — allowed only as the last segment —
 * matches one or more segments. So `github.issue.*` matches `github.issue.upserted` but not `github.issue` or
 * `github.issue.comment.created`; `github.**` matches every type under `github.`; `**` matches every type. Partial
 * wildcards (`github.issue.up*`) are not patterns and are refused.
 */

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

function isTypePattern(pattern: string): boolean {
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
  const exact = new Set(types.filter((type) => !isTypePattern(type)));
  const patterns = types.filter(isTypePattern);
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

/**
 * Whether every type `inner` can match is one `outer` matches (both valid patterns or types): segment by segment,
 * a literal covers only itself, `*` covers any one segment but not `**`, and a trailing `**` covers a non-empty rest.
 */
export function patternCovers(outer: string, inner: string): boolean {
  const a = outer.split('.');
  const b = inner.split('.');
  for (const [index, segment] of a.entries()) {
    if (segment === '**') return b.length > index;
    const other = b[index];
    if (other === undefined || other === '**') return false;
    if (segment !== '*' && segment !== other) return false;
  }
  return a.length === b.length;
}
