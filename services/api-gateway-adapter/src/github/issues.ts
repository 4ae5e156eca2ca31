import { GithubIssue, type CommandInput } from '@switchyard/events';
import { firstIssue } from '@switchyard/service-runtime';
import { UpstreamError } from './upstream-errors.js';
import type { GithubRequest } from './connection.js';

export type IssueCommand =
  | { readonly type: 'github.issue.create'; readonly input: CommandInput<'github.issue.create'> }
  | { readonly type: 'github.issue.update'; readonly input: CommandInput<'github.issue.update'> };

/** The command types this adapter carries out; a unit test checks it against the catalog's `handledBy`. */
export const ISSUE_COMMAND_TYPES: readonly IssueCommand['type'][] = ['github.issue.create', 'github.issue.update'];

export function isIssueCommandType(type: string): type is IssueCommand['type'] {
  return (ISSUE_COMMAND_TYPES as readonly string[]).includes(type);
}

function repoPath(owner: string, repo: string): string {
  return `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}`;
}

function defined(entries: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(entries).filter(([, value]) => value !== undefined));
}

/** The REST call that carries out an issue command (https://docs.github.com/rest/issues/issues). */
export function issueRequest(command: IssueCommand): GithubRequest {
  switch (command.type) {
    case 'github.issue.create': {
      const { owner, repo, title, body, labels, assignees } = command.input;
      return {
        method: 'POST',
        path: `${repoPath(owner, repo)}/issues`,
        body: defined({ title, body, labels, assignees }),
        // GitHub takes no idempotency key: a second POST opens a second issue.
        idempotent: false,
      };
    }
    case 'github.issue.update': {
      const { owner, repo, number, title, body, state, state_reason, labels, assignees } = command.input;
      return {
        method: 'PATCH',
        path: `${repoPath(owner, repo)}/issues/${number}`,
        body: defined({ title, body, state, state_reason, labels, assignees }),
        // Setting fields to given values twice leaves them as once.
        idempotent: true,
      };
    }
    default: {
      const unknown: never = command;
      throw new Error(`no GitHub request for ${(unknown as { type: string }).type}`);
    }
  }
}

/** `https://api.github.com/repos/acme/widgets` → `acme/widgets`. */
function repositoryFromUrl(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const match = /\/repos\/([^/]+)\/([^/]+)\/?$/.exec(url);
  return match?.[1] && match[2] ? `${decodeURIComponent(match[1])}/${decodeURIComponent(match[2])}` : undefined;
}

/**
 * Checks GitHub's answer is an issue and names it. The entity id takes owner and repo from the answer's
 * `repository_url` (GitHub's spelling of the names, as webhooks and polls see them), falling back to the command.
 */
export function parseIssueAnswer(body: unknown, command: IssueCommand): { issue: GithubIssue; entityId: string } {
  const parsed = GithubIssue.safeParse(body);
  if (!parsed.success) {
    const { field, message } = firstIssue(parsed.error);
    throw new UpstreamError('AGW_UPSTREAM_BAD_RESPONSE', `GitHub answered with something that is not an issue: ${field || 'body'}: ${message}`, {
      retry: false,
      circuitFailure: false,
    });
  }
  const issue = parsed.data;
  const repository = repositoryFromUrl(issue.repository_url) ?? `${command.input.owner}/${command.input.repo}`;
  return { issue, entityId: `${repository}#${issue.number}` };
}
