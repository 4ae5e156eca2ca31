import { createHash, randomBytes } from 'node:crypto';

/**
 * Response shapes GitHub uses, shared by the simulator's routes. Error bodies are `{message, documentation_url,
 * status}` plus `errors` on validation failures (https://docs.github.com/rest/using-the-rest-api/troubleshooting-the-rest-api).
 */

export const DOCS = {
  root: 'https://docs.github.com/rest',
  createIssue: 'https://docs.github.com/rest/issues/issues#create-an-issue',
  getIssue: 'https://docs.github.com/rest/issues/issues#get-an-issue',
  updateIssue: 'https://docs.github.com/rest/issues/issues#update-an-issue',
  listIssues: 'https://docs.github.com/rest/issues/issues#list-repository-issues',
  createComment: 'https://docs.github.com/rest/issues/comments#create-an-issue-comment',
  listComments: 'https://docs.github.com/rest/issues/comments#list-issue-comments',
  getRepo: 'https://docs.github.com/rest/repos/repos#get-a-repository',
  getAuthenticatedUser: 'https://docs.github.com/rest/users/users#get-the-authenticated-user',
  rateLimits: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
  versions: 'https://docs.github.com/rest/about-the-rest-api/api-versions',
} as const;

/** One entry of a 422's `errors` array: `{resource, field, code}` and, for `invalid`, the offending `value`. */
export interface ValidationErrorEntry {
  resource: string;
  field: string;
  code: 'missing_field' | 'invalid' | 'missing' | 'already_exists' | 'unprocessable' | 'custom';
  value?: unknown;
  message?: string;
}

export type Headers = Record<string, string>;

/** What a route answers: status, JSON body (or text, or nothing) and headers. */
export interface SimResponse {
  status: number;
  body?: unknown;
  text?: string;
  /** `body` already serialised, when something before sending needed it (the ETag). */
  json?: string;
  headers?: Headers;
}

/** A GitHub error answer thrown from deep inside a route and turned into a response by the pipeline. */
export class GithubHttpError extends Error {
  readonly response: SimResponse;

  constructor(status: number, body: Record<string, unknown>, headers: Headers = {}) {
    super(typeof body['message'] === 'string' ? body['message'] : `HTTP ${status}`);
    this.response = { status, body: { ...body, status: String(status) }, headers };
  }
}

export function notFound(documentationUrl: string = DOCS.root): GithubHttpError {
  return new GithubHttpError(404, { message: 'Not Found', documentation_url: documentationUrl });
}

export function validationFailed(errors: ValidationErrorEntry[], documentationUrl: string): GithubHttpError {
  return new GithubHttpError(422, { message: 'Validation Failed', errors, documentation_url: documentationUrl });
}

/**
 * GitHub's answer to a request it took too long over: "If GitHub takes more than 10 seconds to process an API
 * request, GitHub will terminate the request and you will receive a timeout response and a "Server Error" message"
 * (https://docs.github.com/rest/using-the-rest-api/troubleshooting-the-rest-api#timeouts). The body is the one
 * shown at https://docs.github.com/rest/overview/resources-in-the-rest-api#timeouts, `{"message": "Server Error"}`.
 * The REST docs name no status; the GraphQL docs say the same timeout comes as 502 or 504
 * (https://docs.github.com/graphql/overview/rate-limits-and-query-limits-for-the-graphql-api#timeouts), so 502.
 */
export function serverTimeout(): SimResponse {
  return { status: 502, body: { message: 'Server Error' } };
}

export function problemsParsingJson(): GithubHttpError {
  return new GithubHttpError(400, { message: 'Problems parsing JSON', documentation_url: DOCS.root });
}

/** GitHub timestamps are ISO 8601 with second precision: `2026-11-24T05:00:00Z`. */
export function isoSeconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** Truncates a date to whole seconds, as GitHub stores issue times. */
export function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

/** GitHub sends weak validators for JSON bodies, e.g. `W/"6c1f…"`. */
export function etagOf(payload: string): string {
  return `W/"${createHash('sha256').update(payload).digest('hex').slice(0, 32)}"`;
}

/**
 * RFC 9110 §13.1.2 weak comparison for If-None-Match: any listed tag (weak or strong) with the same opaque value
 * matches, and `*` matches any current representation.
 */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, '');
  const target = opaque(etag);
  return header.split(',').some((tag) => opaque(tag) === target);
}

export function requestId(): string {
  const hex = randomBytes(10).toString('hex').toUpperCase();
  return `${hex.slice(0, 4)}:${hex.slice(4, 8)}:${hex.slice(8, 14)}:${hex.slice(14, 20)}:${Math.floor(Date.now() / 1000).toString(16).toUpperCase()}`;
}

/**
 * The `Link` header of a paginated list (https://docs.github.com/rest/using-the-rest-api/using-pagination-in-the-rest-api):
 * `prev` and `first` when not on the first page, `next` and `last` when not on the last; none for a single page.
 * Every other query parameter of the request is kept.
 */
export function linkHeader(url: URL, page: number, lastPage: number): string | undefined {
  if (lastPage <= 1 && page <= 1) return undefined;
  const at = (target: number) => {
    const copy = new URL(url);
    copy.searchParams.set('page', String(target));
    return `<${copy.toString()}>`;
  };
  const links: string[] = [];
  if (page > 1) links.push(`${at(Math.min(page - 1, Math.max(lastPage, 1)))}; rel="prev"`);
  if (page < lastPage) links.push(`${at(page + 1)}; rel="next"`, `${at(lastPage)}; rel="last"`);
  if (page > 1) links.push(`${at(1)}; rel="first"`);
  return links.length > 0 ? links.join(', ') : undefined;
}
