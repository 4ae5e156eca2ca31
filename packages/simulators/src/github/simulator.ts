import { STATUS_CODES } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { registerControlRoutes } from './control.js';
import { FaultInjector, type Fault, type FaultSpec, type SimMode } from './faults.js';
import { HOUR_MS, RateLimiter, rateLimitHeaders, type RateLimitSnapshot } from './rate-limit.js';
import { renderAuthenticatedUser, renderComment, renderIssue, renderRepo, type UrlBases } from './render.js';
import {
  DOCS,
  etagOf,
  GithubHttpError,
  ifNoneMatchHits,
  linkHeader,
  problemsParsingJson,
  requestId,
  serverTimeout,
  validationFailed,
  wholeSeconds,
  type Headers,
  type SimResponse,
  type ValidationErrorEntry,
} from './responses.js';
import { GithubStore, type ListQuery, type SimIssue, type SimRepo, type SimUser } from './store.js';

export interface GithubSimulatorOptions {
  /** Tokens the API accepts, each acting as a user (login defaults to `switchyard-bot`). */
  readonly tokens: readonly (string | { readonly token: string; readonly login?: string })[];
  /** Repositories that exist from the start: `owner/name`. */
  readonly repos?: readonly string[];
  /** Users who may be assigned in every repository besides its owner and the token users. */
  readonly collaborators?: readonly string[];
  /** Primary rate limit per token and hour (GitHub: 5000). */
  readonly rateLimit?: number;
  /** GitHub answers an exhausted primary limit with 403 or 429; default 403. */
  readonly rateLimitStatus?: 403 | 429;
  /** `X-GitHub-Api-Version` values accepted; others get 400. */
  readonly apiVersions?: readonly string[];
  /** The clock (issue timestamps, rate-limit windows). */
  readonly now?: () => Date;
  /** Base of `url` fields and `Link` headers; by default the address the request was sent to. */
  readonly baseUrl?: string;
  /** Base of `html_url` fields. */
  readonly htmlUrl?: string;
  /**
   * How long the simulated GitHub works on a request before terminating it with its timeout answer (502
   * `{"message": "Server Error"}`); GitHub's is 10 seconds, the default. Only `stall` faults with `when: "before"`
   * run into it.
   */
  readonly serverTimeoutMs?: number;
  /** fastify logger options (the CLI passes JSON logging); off by default. */
  readonly logger?: FastifyServerOptions['logger'];
}

export interface SimCounters {
  /** Requests received on the GitHub surface by `METHOD /route/{param}`, faulted ones included. */
  readonly requests: Record<string, number>;
  /** Answers by `METHOD /route/{param}` and status (`destroy` for dropped connections). */
  readonly responses: Record<string, Record<string, number>>;
  /** Issues (not pull requests) created through the API — answered or not. */
  readonly issuesCreated: number;
  /** Successful `PATCH`es of an issue through the API (whether or not they changed anything) — answered or not. */
  readonly issuesUpdated: number;
  /** Comments created through the API — answered or not. */
  readonly commentsCreated: number;
}

/** Test control, in process; the same operations are served over HTTP under `/_sim`. */
export interface GithubSimulatorControl {
  addRepo(fullName: string, options?: { collaborators?: readonly string[] }): void;
  /** Opens a pull request (an item in the issues list with a `pull_request` key); returns its number. */
  createPullRequest(fullName: string, input: { title: string; body?: string; login?: string }): number;
  /** Every issue and pull request of a repository as the API renders them, by number. */
  issues(fullName: string): Record<string, unknown>[];
  issue(fullName: string, number: number): Record<string, unknown> | undefined;
  injectFault(spec: FaultSpec): Fault;
  pendingFaults(): { fault: Fault; left: number }[];
  /** Drops pending faults, latency and outage mode. */
  clearFaults(): void;
  setMode(mode: SimMode): void;
  setLatency(ms: number): void;
  setRateLimit(token: string, change: { limit?: number; remaining?: number; resetInSeconds?: number }): RateLimitSnapshot;
  resetRateLimits(token?: string): void;
  counters(): SimCounters;
  /** Requests received for one route, e.g. `requestCount('POST', '/repos/{owner}/{repo}/issues')`. */
  requestCount(method: string, route: string): number;
  /** Back to the initial state: seeded repositories only (empty), no faults, fresh rate limits, zero counters. */
  reset(): void;
}

export interface GithubSimulator {
  readonly app: FastifyInstance;
  readonly control: GithubSimulatorControl;
  /** Listens (default 127.0.0.1 on a free port) and returns the base URL, e.g. `http://127.0.0.1:40123`. */
  listen(options?: { port?: number; host?: string }): Promise<string>;
  close(): Promise<void>;
}

interface Account {
  readonly token: string;
  readonly user: SimUser;
  /** When the user "signed up": the simulator's start, in whole seconds. */
  readonly createdAt: Date;
}

interface Context {
  readonly request: FastifyRequest;
  readonly params: Record<string, string>;
  readonly account: Account | undefined;
  readonly url: URL;
  readonly urls: UrlBases;
  /** The request body as JSON (parsed lazily, after authentication, as GitHub does). */
  body(): unknown;
}

type Handler = (context: Context) => SimResponse;

interface RouteSpec {
  readonly method: 'GET' | 'POST' | 'PATCH';
  /** GitHub's notation, also the counters' key: `/repos/{owner}/{repo}/issues`. */
  readonly route: string;
  readonly auth: 'required' | 'optional';
  /** Whether the request counts against the primary rate limit (`GET /rate_limit` does not). */
  readonly counted: boolean;
  readonly handler: Handler;
}

const DEFAULT_LOGIN = 'switchyard-bot';
const DEFAULT_COLLABORATORS = ['octocat', 'monalisa', 'hubot'];
const SECONDARY_LIMIT_DOCS =
  'https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits';

/** Lines from GitHub's `/zen`. */
const ZEN = [
  'Design for failure.',
  'Keep it logically awesome.',
  'Favor focus over features.',
  'Approachable is better than simple.',
  'Mind your words, they are important.',
  'Speak like a human.',
  'Half measures are as bad as nothing at all.',
  'Encourage flow.',
  'Non-blocking is better than blocking.',
  'Anything added dilutes everything else.',
  'Practicality beats purity.',
  'Avoid administrative distraction.',
  'Responsive is better than fast.',
  "It's not fully shipped until it's fast.",
];

function fastifyPath(route: string): string {
  return route.replace(/\{(\w+)\}/g, ':$1');
}

function splitFullName(fullName: string): [string, string] {
  const [owner, name, ...rest] = fullName.split('/');
  if (!owner || !name || rest.length > 0) throw new Error(`expected owner/name, got "${fullName}"`);
  return [owner, name];
}

function json(status: number, body: unknown, headers: Headers = {}): SimResponse {
  return { status, body, headers };
}

function parseListQuery(url: URL): ListQuery {
  const params = url.searchParams;
  const errors: ValidationErrorEntry[] = [];
  const pick = <T extends string>(name: string, allowed: readonly T[], fallback: T): T => {
    const value = params.get(name);
    if (value === null || value === '') return fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    errors.push({ resource: 'Issue', field: name, code: 'invalid', value });
    return fallback;
  };
  const state = pick('state', ['open', 'closed', 'all'] as const, 'open');
  const sort = pick('sort', ['created', 'updated', 'comments'] as const, 'created');
  const direction = pick('direction', ['asc', 'desc'] as const, 'desc');
  const sinceParam = params.get('since');
  let since: Date | undefined;
  if (sinceParam !== null && sinceParam !== '') {
    // ISO 8601: YYYY-MM-DDTHH:MM:SSZ (a date alone is accepted too).
    const valid = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(sinceParam);
    since = valid ? new Date(sinceParam) : undefined;
    if (since === undefined || Number.isNaN(since.getTime())) {
      since = undefined;
      errors.push({ resource: 'Issue', field: 'since', code: 'invalid', value: sinceParam });
    }
  }
  if (errors.length > 0) throw validationFailed(errors, DOCS.listIssues);
  const labels = (params.get('labels') ?? '').split(',').map((label) => label.trim()).filter(Boolean);
  // `creator`: "The user that created the issue" (DOCS.listIssues). The docs name no error for a login that does
  // not exist, so any login is a filter, and an unknown one matches nothing.
  const creator = params.get('creator') || undefined;
  return { state, sort, direction, since, creator, labels, ...parsePaging(params) };
}

/** GitHub: `per_page` defaults to 30 and is capped at 100; `page` starts at 1. */
function parsePaging(params: URLSearchParams): { perPage: number; page: number } {
  const perPageParam = Number.parseInt(params.get('per_page') ?? '', 10);
  const pageParam = Number.parseInt(params.get('page') ?? '', 10);
  const perPage = Number.isFinite(perPageParam) && perPageParam > 0 ? Math.min(perPageParam, 100) : 30;
  const page = Number.isFinite(pageParam) && pageParam > 0 ? pageParam : 1;
  return { perPage, page };
}

/**
 * A GitHub REST API on loopback, following GitHub's documentation: bearer-token auth, issues and
 * comments, pagination with `Link`, ETags and 304s that do not count, the primary rate limit with its headers,
 * and a test-control API under `/_sim` (faults, latency, outages, rate limits, counters).
 */
export function createGithubSimulator(options: GithubSimulatorOptions): GithubSimulator {
  if (options.tokens.length === 0) throw new Error('createGithubSimulator: give at least one token');
  const now = options.now ?? (() => new Date());
  const apiVersions = options.apiVersions ?? ['2022-11-28'];
  const rateLimitStatus = options.rateLimitStatus ?? 403;
  const serverTimeoutMs = options.serverTimeoutMs ?? 10000;
  if (!Number.isInteger(serverTimeoutMs) || serverTimeoutMs < 1) {
    throw new Error('createGithubSimulator: serverTimeoutMs must be a positive integer (milliseconds)');
  }
  const htmlUrl = options.htmlUrl ?? 'https://github.com';
  let listeningUrl: string | undefined;

  let store = new GithubStore(now);
  const limiter = new RateLimiter(options.rateLimit ?? 5000, now, HOUR_MS);
  const faults = new FaultInjector();
  const zeroCounters = () => ({
    requests: new Map<string, number>(),
    responses: new Map<string, Map<string, number>>(),
    issuesCreated: 0,
    issuesUpdated: 0,
    commentsCreated: 0,
  });
  let counters = zeroCounters();

  const accounts = new Map<string, Account>();
  const tokenLogins = options.tokens.map((entry) => (typeof entry === 'string' ? DEFAULT_LOGIN : (entry.login ?? DEFAULT_LOGIN)));
  const collaborators = [...new Set([...(options.collaborators ?? DEFAULT_COLLABORATORS), ...tokenLogins])];

  function seed(): void {
    store = new GithubStore(now);
    accounts.clear();
    options.tokens.forEach((entry, index) => {
      const token = typeof entry === 'string' ? entry : entry.token;
      if (token.length === 0) throw new Error('createGithubSimulator: tokens must not be empty');
      accounts.set(token, { token, user: store.user(tokenLogins[index] ?? DEFAULT_LOGIN), createdAt: wholeSeconds(now()) });
    });
    for (const fullName of options.repos ?? []) store.addRepo(...splitFullName(fullName), collaborators);
  }
  seed();

  const controlUrls = (): UrlBases => ({ api: options.baseUrl ?? listeningUrl ?? 'http://127.0.0.1', html: htmlUrl });

  function count(key: string, status: string): void {
    const byStatus = counters.responses.get(key) ?? new Map<string, number>();
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
    counters.responses.set(key, byStatus);
  }

  // ---- GitHub surface -------------------------------------------------------------------------------------

  const issueBase = '/repos/{owner}/{repo}/issues';
  const repoOf = (context: Context, docs: string): SimRepo =>
    store.repo(context.params['owner'] ?? '', context.params['repo'] ?? '', docs);
  const accountOf = (context: Context): Account => {
    if (context.account === undefined) throw new Error('route needs an account');
    return context.account;
  };
  const actor = (context: Context): SimUser => accountOf(context).user;

  const routes: RouteSpec[] = [
    {
      method: 'GET',
      route: '/zen',
      auth: 'optional',
      counted: true,
      handler: () => ({ status: 200, text: ZEN[Math.floor(Math.random() * ZEN.length)] ?? 'Design for failure.' }),
    },
    {
      method: 'GET',
      route: '/rate_limit',
      auth: 'required',
      counted: false,
      handler: (context) => {
        const core = limiter.peek(context.account?.token ?? '');
        const { resource: _resource, ...rate } = core;
        const other = (limit: number) => ({ limit, remaining: limit, reset: core.reset, used: 0 });
        return json(200, { resources: { core: rate, search: other(30), graphql: other(5000) }, rate });
      },
    },
    {
      method: 'GET',
      route: '/user',
      auth: 'required',
      counted: true,
      handler: (context) => {
        const account = accountOf(context);
        const login = account.user.login.toLowerCase();
        const publicRepos = store.listRepos().filter((repo) => repo.owner.login.toLowerCase() === login).length;
        return json(200, renderAuthenticatedUser(account.user, context.urls, { createdAt: account.createdAt, publicRepos }));
      },
    },
    {
      method: 'GET',
      route: '/repos/{owner}/{repo}',
      auth: 'required',
      counted: true,
      handler: (context) => json(200, renderRepo(repoOf(context, DOCS.getRepo), context.urls)),
    },
    {
      method: 'POST',
      route: issueBase,
      auth: 'required',
      counted: true,
      handler: (context) => {
        const repo = repoOf(context, DOCS.createIssue);
        const issue = store.createIssue(repo, actor(context), context.body());
        counters.issuesCreated += 1;
        const rendered = renderIssue(repo, issue, context.urls);
        return json(201, rendered, { location: String(rendered['url']) });
      },
    },
    {
      method: 'GET',
      route: issueBase,
      auth: 'required',
      counted: true,
      handler: (context) => {
        const repo = repoOf(context, DOCS.listIssues);
        const query = parseListQuery(context.url);
        const items = store.list(repo, query);
        const lastPage = Math.max(1, Math.ceil(items.length / query.perPage));
        const pageItems = items.slice((query.page - 1) * query.perPage, query.page * query.perPage);
        const link = items.length === 0 ? undefined : linkHeader(context.url, query.page, lastPage);
        return json(
          200,
          pageItems.map((issue) => renderIssue(repo, issue, context.urls)),
          link === undefined ? {} : { link },
        );
      },
    },
    {
      method: 'GET',
      route: `${issueBase}/{number}`,
      auth: 'required',
      counted: true,
      handler: (context) => {
        const repo = repoOf(context, DOCS.getIssue);
        return json(200, renderIssue(repo, store.issue(repo, context.params['number'] ?? '', DOCS.getIssue), context.urls));
      },
    },
    {
      method: 'PATCH',
      route: `${issueBase}/{number}`,
      auth: 'required',
      counted: true,
      handler: (context) => {
        const repo = repoOf(context, DOCS.updateIssue);
        const issue = store.issue(repo, context.params['number'] ?? '', DOCS.updateIssue);
        const updated = store.updateIssue(repo, issue, actor(context), context.body());
        counters.issuesUpdated += 1;
        return json(200, renderIssue(repo, updated, context.urls));
      },
    },
    {
      method: 'POST',
      route: `${issueBase}/{number}/comments`,
      auth: 'required',
      counted: true,
      handler: (context) => {
        const repo = repoOf(context, DOCS.createComment);
        const issue = store.issue(repo, context.params['number'] ?? '', DOCS.createComment);
        const comment = store.addComment(issue, actor(context), context.body());
        counters.commentsCreated += 1;
        const rendered = renderComment(repo, issue, comment, context.urls);
        return json(201, rendered, { location: rendered.url });
      },
    },
    {
      method: 'GET',
      route: `${issueBase}/{number}/comments`,
      auth: 'required',
      counted: true,
      handler: (context) => {
        const repo = repoOf(context, DOCS.listComments);
        const issue = store.issue(repo, context.params['number'] ?? '', DOCS.listComments);
        const { perPage, page } = parsePaging(context.url.searchParams);
        const lastPage = Math.max(1, Math.ceil(issue.comments.length / perPage));
        const link = issue.comments.length === 0 ? undefined : linkHeader(context.url, page, lastPage);
        const pageItems = issue.comments.slice((page - 1) * perPage, page * perPage);
        return json(
          200,
          pageItems.map((comment) => renderComment(repo, issue, comment, context.urls)),
          link === undefined ? {} : { link },
        );
      },
    },
  ];

  function baseHeaders(): Headers {
    return {
      'x-github-api-version-selected': apiVersions[0] ?? '2022-11-28',
      'x-github-media-type': 'github.v3; format=json',
      'x-github-request-id': requestId(),
    };
  }

  function authenticate(request: FastifyRequest): { kind: 'none' } | { kind: 'bad' } | { kind: 'ok'; account: Account } {
    const header = request.headers.authorization;
    if (header === undefined || header === '') return { kind: 'none' };
    const match = /^(?:bearer|token)\s+(\S+)\s*$/i.exec(header);
    const account = match?.[1] === undefined ? undefined : accounts.get(match[1]);
    return account === undefined ? { kind: 'bad' } : { kind: 'ok', account };
  }

  /** A status fault's answer; 403 and 429 look like GitHub's secondary rate limit. */
  function faultResponse(status: number, retryAfterSeconds: number | undefined): SimResponse {
    const headers: Headers = retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) };
    if (status === 403 || status === 429) {
      // A secondary rate limit: GitHub says so in the message and may send retry-after.
      return json(
        status,
        {
          message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
          documentation_url: SECONDARY_LIMIT_DOCS,
          status: String(status),
        },
        headers,
      );
    }
    return json(status, { message: STATUS_CODES[status] ?? 'Server Error', status: String(status) }, headers);
  }

  // Delays end early when the simulator closes, so a long stall never holds up close().
  const closing = new AbortController();

  /** Waits `ms`; false when the simulator started closing meanwhile (the caller then drops the connection). */
  async function wait(ms: number): Promise<boolean> {
    if (ms <= 0) return !closing.signal.aborted;
    try {
      await sleep(ms, undefined, { signal: closing.signal });
      return true;
    } catch {
      return false;
    }
  }

  function destroy(request: FastifyRequest, reply: FastifyReply, key: string): void {
    count(key, 'destroy');
    reply.hijack();
    // inject() has no real socket; destroying the response is what makes it reject (LIGHT_ECONNRESET).
    const socket = request.raw.socket as { destroy?: () => void } | null;
    if (typeof socket?.destroy === 'function') socket.destroy();
    reply.raw.destroy();
  }

  async function send(reply: FastifyReply, key: string, response: SimResponse, extra: Headers): Promise<void> {
    count(key, String(response.status));
    void reply.code(response.status).headers({ ...extra, ...response.headers });
    if (response.status === 304) {
      await reply.send();
    } else if (response.text !== undefined) {
      await reply.type('text/plain; charset=utf-8').send(response.text);
    } else {
      await reply.type('application/json; charset=utf-8').send(response.json ?? JSON.stringify(response.body));
    }
  }

  /**
   * A `before` fault: answers (or drops) the request without effect and returns true, or returns false when the
   * request is to go on — a `stall` that ended within the server timeout.
   */
  async function beforeFault(fault: Fault, request: FastifyRequest, reply: FastifyReply, key: string): Promise<boolean> {
    if (fault.response === 'stall' && (fault.delayMs ?? 0) > serverTimeoutMs) {
      // GitHub terminates what it has worked on too long; the request has no effect (see serverTimeout()).
      if (!(await wait(serverTimeoutMs))) destroy(request, reply, key);
      else await send(reply, key, serverTimeout(), baseHeaders());
      return true;
    }
    if (!(await wait(fault.delayMs ?? 0))) {
      destroy(request, reply, key);
      return true;
    }
    if (fault.response === 'stall') return false;
    if (fault.response === 'destroy') destroy(request, reply, key);
    else await send(reply, key, faultResponse(fault.response, fault.retryAfterSeconds), {});
    return true;
  }

  async function serve(spec: RouteSpec, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const key = `${spec.method} ${spec.route}`;
    counters.requests.set(key, (counters.requests.get(key) ?? 0) + 1);

    if (faults.mode === 'destroy') return destroy(request, reply, key);
    if (faults.mode === 'unavailable') {
      return send(reply, key, json(503, { message: 'Service Unavailable', status: '503' }), {});
    }
    if (faults.latencyMs > 0 && !(await wait(faults.latencyMs))) return destroy(request, reply, key);
    const before = faults.take(spec.method, spec.route, 'before');
    if (before !== undefined && (await beforeFault(before, request, reply, key))) return;

    const headers = baseHeaders();
    const version = request.headers['x-github-api-version'];
    if (typeof version === 'string' && !apiVersions.includes(version)) {
      return send(
        reply,
        key,
        json(400, { message: `API version '${version}' is not supported.`, documentation_url: DOCS.versions, status: '400' }),
        headers,
      );
    }

    const auth = authenticate(request);
    if (auth.kind === 'bad') {
      return send(reply, key, json(401, { message: 'Bad credentials', documentation_url: DOCS.root, status: '401' }), headers);
    }
    if (auth.kind === 'none' && spec.auth === 'required') {
      return send(
        reply,
        key,
        json(401, { message: 'Requires authentication', documentation_url: DOCS.root, status: '401' }),
        headers,
      );
    }
    const account = auth.kind === 'ok' ? auth.account : undefined;
    const counted = spec.counted && account !== undefined;

    const rateLimited = (): SimResponse => {
      const snapshot = limiter.peek(account?.token ?? '');
      return json(
        rateLimitStatus,
        {
          message: `API rate limit exceeded for user ID ${account?.user.id ?? 0}. If you reach out to GitHub Support for help, please include the request ID ${headers['x-github-request-id']}.`,
          documentation_url: DOCS.rateLimits,
          status: String(rateLimitStatus),
        },
        rateLimitHeaders(snapshot),
      );
    };

    // Requests with effects are refused before they take effect; reads are decided once their answer is known,
    // because an authorized 304 does not count against the limit.
    if (counted && spec.method !== 'GET' && limiter.isExhausted(account.token)) {
      return send(reply, key, rateLimited(), headers);
    }

    const url = new URL(request.url, options.baseUrl ?? `${request.protocol}://${request.host}`);
    const urls: UrlBases = { api: options.baseUrl ?? `${request.protocol}://${request.host}`, html: htmlUrl };
    const rawBody = request.body;
    const context: Context = {
      request,
      params: request.params as Record<string, string>,
      account,
      url,
      urls,
      body: () => {
        if (typeof rawBody !== 'string' || rawBody.trim() === '') return undefined;
        try {
          return JSON.parse(rawBody) as unknown;
        } catch {
          throw problemsParsingJson();
        }
      },
    };

    let response: SimResponse;
    try {
      response = spec.handler(context);
    } catch (error) {
      if (!(error instanceof GithubHttpError)) throw error;
      response = error.response;
    }

    if (spec.method === 'GET' && response.status === 200) {
      const payload = response.text ?? JSON.stringify(response.body);
      if (response.text === undefined) response = { ...response, json: payload };
      const etag = etagOf(`${payload}\n${response.headers?.['link'] ?? ''}`);
      Object.assign(headers, {
        etag,
        'cache-control': 'private, max-age=60, s-maxage=60',
        vary: 'Accept, Authorization, Cookie, X-GitHub-OTP',
      });
      if (ifNoneMatchHits(request.headers['if-none-match'], etag)) {
        response = { status: 304, headers: response.headers?.['link'] ? { link: response.headers['link'] } : {} };
      }
    }
    if (counted && response.status !== 304) {
      if (limiter.isExhausted(account.token)) return send(reply, key, rateLimited(), headers);
      limiter.consume(account.token);
    }
    // The answer as it stands now that the request took effect; an `after` fault may delay, replace or drop it.
    const snapshot = account === undefined ? undefined : limiter.peek(account.token);
    const answerHeaders = snapshot === undefined ? headers : { ...headers, ...rateLimitHeaders(snapshot) };

    const after = faults.take(spec.method, spec.route, 'after');
    if (after === undefined) return send(reply, key, response, answerHeaders);
    if (!(await wait(after.delayMs ?? 0)) || after.response === 'destroy') return destroy(request, reply, key);
    if (after.response === 'stall') return send(reply, key, response, answerHeaders);
    return send(reply, key, faultResponse(after.response, after.retryAfterSeconds), headers);
  }

  // ---- app ------------------------------------------------------------------------------------------------

  const app = Fastify({
    logger: options.logger ?? false,
    return503OnClosing: true,
    // Health probes hit /zen every few seconds; their request lines would drown the API calls in the log.
    logController: new LogController({ disableRequestLogging: (request) => request.url === '/zen' }),
  });

  app.addHook('preClose', async () => closing.abort());

  app.setNotFoundHandler((_request, reply) => {
    void reply
      .code(404)
      .type('application/json; charset=utf-8')
      .send(JSON.stringify({ message: 'Not Found', documentation_url: DOCS.root, status: '404' }));
  });

  app.setErrorHandler((error, request, reply) => {
    if (error instanceof GithubHttpError) {
      void reply.code(error.response.status).send(error.response.body);
      return;
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      void reply.code(status).send({ message: (error as Error).message, documentation_url: DOCS.root, status: String(status) });
      return;
    }
    request.log.error({ err: error }, 'simulator error');
    void reply.code(500).send({ message: 'Server Error', status: '500' });
  });

  void app.register(async (github) => {
    // GitHub reads any body as JSON whatever its content type; parse it only after authentication.
    github.removeAllContentTypeParsers();
    github.addContentTypeParser('*', { parseAs: 'string', bodyLimit: 1048576 }, (_request, body, done) => done(null, body));
    for (const spec of routes) {
      github.route({ method: spec.method, url: fastifyPath(spec.route), handler: (request, reply) => serve(spec, request, reply) });
    }
  });

  const control: GithubSimulatorControl = {
    addRepo: (fullName, repoOptions = {}) => {
      store.addRepo(...splitFullName(fullName), [...collaborators, ...(repoOptions.collaborators ?? [])]);
    },
    createPullRequest: (fullName, input) => {
      const repo = store.repo(...splitFullName(fullName), DOCS.root);
      const user = store.user(input.login ?? tokenLogins[0] ?? DEFAULT_LOGIN);
      return store.createIssue(repo, user, { title: input.title, body: input.body }, 'pull_request').number;
    },
    issues: (fullName) => {
      const repo = store.repo(...splitFullName(fullName), DOCS.root);
      return repo.issues.map((issue: SimIssue) => renderIssue(repo, issue, controlUrls()));
    },
    issue: (fullName, number) => {
      const repo = store.repo(...splitFullName(fullName), DOCS.root);
      const issue = repo.issues[number - 1];
      return issue === undefined ? undefined : renderIssue(repo, issue, controlUrls());
    },
    injectFault: (spec) => faults.add(spec),
    pendingFaults: () => faults.pending(),
    clearFaults: () => faults.clear(),
    setMode: (mode) => {
      faults.mode = mode;
    },
    setLatency: (ms) => {
      faults.latencyMs = ms;
    },
    setRateLimit: (token, change) => limiter.set(token, change),
    resetRateLimits: (token) => limiter.reset(token),
    counters: () => ({
      requests: Object.fromEntries(counters.requests),
      responses: Object.fromEntries([...counters.responses].map(([key, byStatus]) => [key, Object.fromEntries(byStatus)])),
      issuesCreated: counters.issuesCreated,
      issuesUpdated: counters.issuesUpdated,
      commentsCreated: counters.commentsCreated,
    }),
    requestCount: (method, route) => counters.requests.get(`${method.toUpperCase()} ${route}`) ?? 0,
    reset: () => {
      seed();
      faults.clear();
      limiter.reset();
      counters = zeroCounters();
    },
  };

  void app.register(async (sim) => registerControlRoutes(sim, control, () => store.listRepos().map((repo) => renderRepo(repo, controlUrls()))), {
    prefix: '/_sim',
  });

  return {
    app,
    control,
    async listen(listenOptions = {}) {
      const host = listenOptions.host ?? '127.0.0.1';
      await app.listen({ port: listenOptions.port ?? 0, host });
      const address = app.server.address();
      const port = typeof address === 'object' && address !== null ? address.port : listenOptions.port;
      listeningUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
      return listeningUrl;
    },
    close: () => app.close(),
  };
}
