import { header, retryAfterMs, serverError, UpstreamError, type ResponseHeaders } from '../kit/errors.js';
import type { ProviderAnswer } from '../kit/types.js';

interface GithubErrorBody {
  message?: unknown;
  errors?: unknown;
}

/** GitHub asks for at least a minute's wait after a secondary rate limit that gives no retry-after. */
export const SECONDARY_LIMIT_MIN_WAIT_MS = 60000;

function githubMessage(body: unknown): string {
  const message = (body as GithubErrorBody | undefined)?.message;
  return typeof message === 'string' ? message.slice(0, 300) : '';
}

/**
 * How long a rate-limited answer asks us to wait, or undefined when the answer is not a rate limit. Following
 * https://docs.github.com/rest/using-the-rest-api/troubleshooting-the-rest-api#rate-limit-errors: retry-after
 * when present; else, with x-ratelimit-remaining 0, until x-ratelimit-reset (epoch seconds, plus a second for
 * its truncation); else, for a secondary limit, at least a minute.
 */
export function rateLimitWaitMs(status: number, headers: ResponseHeaders, body: unknown, nowMs: number): number | undefined {
  if (status !== 403 && status !== 429) return undefined;
  const after = retryAfterMs(headers, nowMs);
  if (after !== undefined) return after;
  if (header(headers, 'x-ratelimit-remaining') === '0') {
    const reset = Number(header(headers, 'x-ratelimit-reset'));
    return Number.isFinite(reset) ? Math.max(0, reset * 1000 - nowMs) + 1000 : SECONDARY_LIMIT_MIN_WAIT_MS;
  }
  if (status === 429 || /secondary rate limit|abuse/i.test(githubMessage(body))) return SECONDARY_LIMIT_MIN_WAIT_MS;
  return undefined;
}

/** GitHub's 422 field as a path in the command (`assignees` → `data.input.assignees`). */
function validationField(body: unknown): { field: string | undefined; detail: string } {
  const errors = (body as GithubErrorBody | undefined)?.errors;
  const first: unknown = Array.isArray(errors) ? errors[0] : undefined;
  if (typeof first !== 'object' || first === null) return { field: undefined, detail: '' };
  const { field, code, value, message, resource } = first as Record<string, unknown>;
  const name = typeof field === 'string' && /^[a-z_][a-z0-9_]*$/i.test(field) ? field : undefined;
  const parts = [
    typeof resource === 'string' ? resource : undefined,
    name,
    typeof code === 'string' ? code : undefined,
    value === undefined ? undefined : `(${JSON.stringify(value).slice(0, 100)})`,
    typeof message === 'string' ? `— ${message.slice(0, 200)}` : undefined,
  ].filter(Boolean);
  return { field: name === undefined ? undefined : `data.input.${name}`, detail: parts.join(' ') };
}

/**
 * Maps a non-2xx GitHub answer to what it means for the command
 * (https://docs.github.com/rest/using-the-rest-api/troubleshooting-the-rest-api). Refusals (4xx) were not carried
 * out; a 5xx may have been.
 */
export function classifyGithubAnswer({ status, headers, body }: ProviderAnswer, nowMs: number): UpstreamError {
  const said = githubMessage(body);
  const quoted = said ? `: ${said}` : '';
  const wait = rateLimitWaitMs(status, headers, body, nowMs);
  if (wait !== undefined) {
    const until = new Date(nowMs + wait).toISOString();
    return new UpstreamError('AGW_UPSTREAM_RATE_LIMITED', `GitHub rate limit (HTTP ${status}): wait until ${until}${quoted}`, {
      status,
      retry: true,
      retryAfterMs: wait,
      circuitFailure: false,
    });
  }
  if (status === 401) {
    return new UpstreamError('AGW_UPSTREAM_UNAUTHORIZED', `GitHub refused the credentials (HTTP 401)${quoted}`, {
      status,
      retry: false,
      circuitFailure: false,
    });
  }
  if (status === 403) {
    return new UpstreamError('AGW_UPSTREAM_FORBIDDEN', `GitHub refused access (HTTP 403)${quoted}`, {
      status,
      retry: false,
      circuitFailure: false,
    });
  }
  if (status === 404) {
    return new UpstreamError('AGW_UPSTREAM_NOT_FOUND', `GitHub: not found, or not visible to the token (HTTP 404)`, {
      status,
      retry: false,
      circuitFailure: false,
    });
  }
  if (status === 422) {
    const { field, detail } = validationField(body);
    return new UpstreamError('AGW_UPSTREAM_VALIDATION_FAILED', `GitHub refused the request (HTTP 422)${quoted}${detail ? `: ${detail}` : ''}`, {
      status,
      retry: false,
      circuitFailure: false,
      field,
    });
  }
  if (status >= 500) return serverError('GitHub', status, headers, nowMs, said);
  return new UpstreamError('AGW_UPSTREAM_REJECTED', `GitHub refused the request (HTTP ${status})${quoted}`, {
    status,
    retry: false,
    circuitFailure: false,
  });
}

