import { GithubIssue, microsFromDate, sourceVersions } from '@switchyard/events';
import { badResponse } from '../kit/errors.js';
import type { CommandContext, CommandHandler, EntityState, ProviderAnswer } from '../kit/types.js';

/**
 * GitHub issues (https://docs.github.com/rest/issues/issues). Creating one is not idempotent and GitHub takes no
 * idempotency key, so every create carries its command id in an HTML comment at the end of the body (not
 * rendered), and after a lost answer the connection's own recent issues are listed to find it again.
 */

/** The invisible line a create appends to the issue body, naming its command. */
export function commandMarker(commandId: string): string {
  return `<!-- switchyard:command ${commandId} -->`;
}

/** Room the marker takes at the end of a body: the catalog keeps inputs short enough for GitHub's limit. */
function withMarker(body: string | undefined, commandId: string): string {
  return body === undefined || body === '' ? commandMarker(commandId) : `${body}\n\n${commandMarker(commandId)}`;
}

function repoPath(owner: string, repo: string): string {
  return `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}`;
}

function defined(entries: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== undefined));
}

/** `https://api.github.com/repos/acme/widgets` → `acme/widgets`. */
function repositoryFromUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const match = /\/repos\/([^/]+)\/([^/]+)\/?$/.exec(url);
  return match?.[1] && match[2] ? `${decodeURIComponent(match[1])}/${decodeURIComponent(match[2])}` : undefined;
}

/**
 * An issue as entity state. The entity id takes owner and repo from the issue's `repository_url` (GitHub's
 * spelling of the names, as webhooks and polls see them), falling back to the command's.
 */
export function issueState(body: unknown, fallback: { owner: string; repo: string }, observedAt: Date): EntityState {
  const parsed = GithubIssue.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = (issue?.path ?? []).map(String).join('.');
    throw badResponse('GitHub', `something that is not an issue: ${field || 'body'}: ${issue?.message ?? 'invalid'}`);
  }
  const state = parsed.data;
  const repository = repositoryFromUrl(state.repository_url) ?? `${fallback.owner}/${fallback.repo}`;
  return {
    entity: 'github.issue',
    entityId: `${repository}#${state.number}`,
    version: sourceVersions.githubIssue(state, microsFromDate(observedAt)),
    state,
  };
}

const answerState = (answer: ProviderAnswer, input: { owner: string; repo: string }, context: CommandContext) =>
  issueState(answer.body, input, context.observedAt);

/** Issues are listed newest first; the lookup stops this far before the attempt began (clock differences). */
const LOOKUP_SKEW_MS = 5 * 60 * 1000;
/** And after this many pages of 100 (GitHub answers `creator` lists from its database, not the search index). */
const LOOKUP_PAGES = 10;

export const createIssue: CommandHandler<'github.issue.create'> = {
  type: 'github.issue.create',
  request: (input, context) => {
    const { owner, repo, title, body, labels, assignees } = input;
    return {
      method: 'POST',
      path: `${repoPath(owner, repo)}/issues`,
      body: { json: defined({ title, body: withMarker(body, context.commandId), labels, assignees }) },
    };
  },
  entity: answerState,
  idempotency: {
    kind: 'lookup',
    // GET /repos/{owner}/{repo}/issues?creator=<login>: a core-rate-limit request over GitHub's database (the
    // search API lags and allows 30 requests a minute). Pull requests are in the list too; they never carry a marker.
    async find(input, { commandId, since }, requester) {
      const login = await requester.identity();
      const marker = commandMarker(commandId);
      const oldest = since.getTime() - LOOKUP_SKEW_MS;
      for (let page = 1; page <= LOOKUP_PAGES; page += 1) {
        const query = new URLSearchParams({ creator: login, state: 'all', sort: 'created', direction: 'desc', per_page: '100', page: String(page) });
        const answer = await requester.get(`${repoPath(input.owner, input.repo)}/issues?${query.toString()}`);
        if (!Array.isArray(answer.body)) throw badResponse('GitHub', 'a list that is not an array');
        const issues = answer.body as { body?: unknown; created_at?: unknown; pull_request?: unknown }[];
        const match = issues.find((issue) => issue.pull_request === undefined && typeof issue.body === 'string' && issue.body.includes(marker));
        if (match) return { found: true, entity: issueState(match, input, new Date()) };
        const last = issues.at(-1)?.created_at;
        if (issues.length < 100 || typeof last !== 'string' || Date.parse(last) < oldest) return { found: false };
      }
      return { found: false };
    },
  },
};

export const updateIssue: CommandHandler<'github.issue.update'> = {
  type: 'github.issue.update',
  request: (input) => {
    const { owner, repo, number, title, body, state, state_reason, labels, assignees } = input;
    return {
      method: 'PATCH',
      path: `${repoPath(owner, repo)}/issues/${number}`,
      body: { json: defined({ title, body, state, state_reason, labels, assignees }) },
    };
  },
  entity: answerState,
  // Setting fields to given values twice leaves them as once.
  idempotency: { kind: 'repeatable' },
};
