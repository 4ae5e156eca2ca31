import type { Connector } from '../kit/types.js';
import { classifyGithubAnswer } from './errors.js';
import { createIssue, updateIssue } from './issues.js';

/**
 * GitHub's REST API (https://docs.github.com/rest), or GitHub Enterprise Server at `https://<host>/api/v3`.
 * Authentication is a token sent as `Authorization: Bearer`; answers are versioned by `X-GitHub-Api-Version`.
 */
export const github: Connector = {
  provider: 'github',
  title: 'GitHub',
  defaultBaseUrl: 'https://api.github.com',
  // "If GitHub takes more than 10 seconds to process an API request, GitHub will terminate the request"
  // (https://docs.github.com/rest/using-the-rest-api/troubleshooting-the-rest-api#timeouts).
  settleMs: 10000,
  headers: (settings) => ({
    authorization: `Bearer ${settings.token}`,
    accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28',
  }),
  classify: classifyGithubAnswer,
  identity: {
    request: { method: 'GET', path: '/user' },
    read: (answer) => {
      const login = (answer.body as { login?: unknown } | undefined)?.login;
      if (typeof login !== 'string' || login === '') throw new Error('GitHub GET /user answered without a login');
      return login;
    },
  },
  commands: {
    'github.issue.create': createIssue,
    'github.issue.update': updateIssue,
  },
};

export { classifyGithubAnswer, rateLimitWaitMs, SECONDARY_LIMIT_MIN_WAIT_MS } from './errors.js';
export { commandMarker, issueState } from './issues.js';
