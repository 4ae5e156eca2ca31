import { afterEach, describe, expect, it } from 'vitest';
import { createGithubSimulator, type GithubSimulator, type GithubSimulatorOptions } from '../src/index.js';

const TOKEN = 'ghp_simulatortesttoken0001';
const auth = { authorization: `Bearer ${TOKEN}` };
const ISSUES = '/repos/acme/widgets/issues';

interface IssueJson {
  id: number;
  node_id: string;
  number: number;
  url: string;
  repository_url: string;
  updated_at: string;
  labels: unknown[];
}
interface ErrorJson {
  message: string;
  errors: unknown[];
}

/** A clock the test moves by hand. */
function manualClock(start = '2026-11-24T05:00:00.000Z') {
  let now = new Date(start);
  return {
    now: () => now,
    advance(seconds: number) {
      now = new Date(now.getTime() + seconds * 1000);
    },
  };
}

let sims: GithubSimulator[] = [];
function simulator(options: Partial<GithubSimulatorOptions> = {}): GithubSimulator {
  const sim = createGithubSimulator({ tokens: [TOKEN], repos: ['acme/widgets'], ...options });
  sims.push(sim);
  return sim;
}

afterEach(async () => {
  await Promise.all(sims.map((sim) => sim.close()));
  sims = [];
});

async function create(sim: GithubSimulator, body: Record<string, unknown>, path = ISSUES) {
  return sim.app.inject({ method: 'POST', url: path, headers: auth, payload: body });
}

describe('authentication', () => {
  it('answers 401 Bad credentials to a wrong token and Requires authentication to none, without rate-limit headers', async () => {
    const sim = simulator();
    const wrong = await sim.app.inject({ method: 'GET', url: ISSUES, headers: { authorization: 'Bearer nope' } });
    expect(wrong.statusCode).toBe(401);
    expect(wrong.json()).toMatchObject({ message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' });
    expect(wrong.headers['x-ratelimit-limit']).toBeUndefined();

    const none = await sim.app.inject({ method: 'POST', url: ISSUES, payload: { title: 'x' } });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ message: 'Requires authentication' });
    expect(sim.control.issues('acme/widgets')).toHaveLength(0);
  });

  it('accepts `token <token>` as well as `Bearer <token>`', async () => {
    const sim = simulator();
    const response = await sim.app.inject({ method: 'GET', url: ISSUES, headers: { authorization: `token ${TOKEN}` } });
    expect(response.statusCode).toBe(200);
  });

  it('serves /zen as text without a token, and refuses a bad one there too', async () => {
    const sim = simulator();
    const zen = await sim.app.inject({ method: 'GET', url: '/zen' });
    expect(zen.statusCode).toBe(200);
    expect(zen.headers['content-type']).toMatch(/^text\/plain/);
    expect(zen.body.length).toBeGreaterThan(0);
    const bad = await sim.app.inject({ method: 'GET', url: '/zen', headers: { authorization: 'Bearer nope' } });
    expect(bad.statusCode).toBe(401);
  });

  it('refuses an API version it does not support with 400', async () => {
    const sim = simulator();
    const response = await sim.app.inject({
      method: 'GET',
      url: ISSUES,
      headers: { ...auth, 'x-github-api-version': '1999-01-01' },
    });
    expect(response.statusCode).toBe(400);
    const ok = await sim.app.inject({ method: 'GET', url: ISSUES, headers: { ...auth, 'x-github-api-version': '2022-11-28' } });
    expect(ok.statusCode).toBe(200);
  });
});

describe('creating issues', () => {
  it('answers 201 with the full issue, second-precision timestamps and label objects, and stores it', async () => {
    const clock = manualClock('2026-11-24T05:00:00.734Z');
    const sim = simulator({ now: clock.now });
    const response = await create(sim, { title: 'Widget jams', body: 'at 3 rpm', labels: ['bug', { name: 'p1' }], assignees: ['octocat'] });
    expect(response.statusCode).toBe(201);
    const issue = response.json<IssueJson>();
    expect(issue).toMatchObject({
      number: 1,
      title: 'Widget jams',
      body: 'at 3 rpm',
      state: 'open',
      state_reason: null,
      comments: 0,
      created_at: '2026-11-24T05:00:00Z',
      updated_at: '2026-11-24T05:00:00Z',
      closed_at: null,
      user: { login: 'switchyard-bot', type: 'User' },
      assignees: [{ login: 'octocat' }],
      html_url: 'https://github.com/acme/widgets/issues/1',
    });
    expect(issue.id).toEqual(expect.any(Number));
    expect(issue.node_id).toMatch(/^I_/);
    expect(issue.repository_url).toMatch(/\/repos\/acme\/widgets$/);
    expect(issue.labels).toEqual([
      expect.objectContaining({ name: 'bug', color: 'ededed', id: expect.any(Number), default: false }),
      expect.objectContaining({ name: 'p1' }),
    ]);
    expect(response.headers['location']).toBe(issue.url);
    expect(response.headers['x-ratelimit-remaining']).toBe('4999');

    const fetched = await sim.app.inject({ method: 'GET', url: `${ISSUES}/1`, headers: auth });
    expect(fetched.json()).toEqual(issue);
    expect(sim.control.issue('acme/widgets', 1)).toMatchObject({ title: 'Widget jams' });
  });

  it.each([
    ['missing', {}],
    ['empty', { title: '' }],
    ['blank', { title: '   ' }],
    ['null', { title: null }],
  ])('answers 422 missing_field for a %s title and stores nothing', async (_case, body) => {
    const sim = simulator();
    const response = await create(sim, body);
    expect(response.statusCode).toBe(422);
    expect(response.json()).toEqual({
      message: 'Validation Failed',
      errors: [{ resource: 'Issue', field: 'title', code: 'missing_field' }],
      documentation_url: 'https://docs.github.com/rest/issues/issues#create-an-issue',
      status: '422',
    });
    expect(sim.control.issues('acme/widgets')).toHaveLength(0);
  });

  it('answers 422 naming assignees that cannot be assigned', async () => {
    const sim = simulator();
    const response = await create(sim, { title: 'x', assignees: ['octocat', 'ghost'] });
    expect(response.statusCode).toBe(422);
    expect(response.json<ErrorJson>().errors).toEqual([{ resource: 'Issue', field: 'assignees', code: 'invalid', value: 'ghost' }]);
  });

  it('answers 404 Not Found for an unknown repository, repositories are case-insensitive', async () => {
    const sim = simulator();
    const missing = await create(sim, { title: 'x' }, '/repos/acme/gadgets/issues');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ message: 'Not Found', documentation_url: expect.stringContaining('docs.github.com') });
    const upper = await create(sim, { title: 'x' }, '/repos/ACME/Widgets/issues');
    expect(upper.statusCode).toBe(201);
    expect(upper.json<IssueJson>().repository_url).toMatch(/\/repos\/acme\/widgets$/);
  });

  it('answers 400 Problems parsing JSON to a body that is not JSON', async () => {
    const sim = simulator();
    const response = await sim.app.inject({
      method: 'POST',
      url: ISSUES,
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"title": ',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ message: 'Problems parsing JSON' });
  });
});

describe('updating issues', () => {
  it('closes with closed_at and state_reason, reopens, and moves updated_at only on a change', async () => {
    const clock = manualClock();
    const sim = simulator({ now: clock.now });
    await create(sim, { title: 'Widget jams', labels: ['bug'] });

    clock.advance(60);
    const closed = await sim.app.inject({ method: 'PATCH', url: `${ISSUES}/1`, headers: auth, payload: { state: 'closed' } });
    expect(closed.statusCode).toBe(200);
    expect(closed.json()).toMatchObject({
      state: 'closed',
      state_reason: 'completed',
      closed_at: '2026-11-24T05:01:00Z',
      updated_at: '2026-11-24T05:01:00Z',
      created_at: '2026-11-24T05:00:00Z',
      closed_by: { login: 'switchyard-bot' },
    });

    clock.advance(60);
    const same = await sim.app.inject({ method: 'PATCH', url: `${ISSUES}/1`, headers: auth, payload: { state: 'closed' } });
    expect(same.json<IssueJson>().updated_at).toBe('2026-11-24T05:01:00Z');

    clock.advance(60);
    const reopened = await sim.app.inject({
      method: 'PATCH',
      url: `${ISSUES}/1`,
      headers: auth,
      payload: { state: 'open', title: 'Widget jams (again)', labels: ['regression'] },
    });
    expect(reopened.json()).toMatchObject({
      state: 'open',
      state_reason: 'reopened',
      closed_at: null,
      closed_by: null,
      title: 'Widget jams (again)',
      updated_at: '2026-11-24T05:03:00Z',
      labels: [expect.objectContaining({ name: 'regression' })],
    });
  });

  it('validates state and answers 404 for an unknown number', async () => {
    const sim = simulator();
    await create(sim, { title: 'x' });
    const invalid = await sim.app.inject({ method: 'PATCH', url: `${ISSUES}/1`, headers: auth, payload: { state: 'done' } });
    expect(invalid.statusCode).toBe(422);
    expect(invalid.json<ErrorJson>().errors).toEqual([{ resource: 'Issue', field: 'state', code: 'invalid', value: 'done' }]);
    const missing = await sim.app.inject({ method: 'PATCH', url: `${ISSUES}/9`, headers: auth, payload: { title: 'y' } });
    expect(missing.statusCode).toBe(404);
  });

  it('adds comments, counting them on the issue and moving its updated_at', async () => {
    const clock = manualClock();
    const sim = simulator({ now: clock.now });
    await create(sim, { title: 'x' });
    clock.advance(5);
    const comment = await sim.app.inject({ method: 'POST', url: `${ISSUES}/1/comments`, headers: auth, payload: { body: 'seen it' } });
    expect(comment.statusCode).toBe(201);
    expect(comment.json()).toMatchObject({ body: 'seen it', user: { login: 'switchyard-bot' }, created_at: '2026-11-24T05:00:05Z' });
    expect(sim.control.issue('acme/widgets', 1)).toMatchObject({ comments: 1, updated_at: '2026-11-24T05:00:05Z' });
    const empty = await sim.app.inject({ method: 'POST', url: `${ISSUES}/1/comments`, headers: auth, payload: {} });
    expect(empty.statusCode).toBe(422);
    expect(empty.json<ErrorJson>().errors).toEqual([{ resource: 'IssueComment', field: 'body', code: 'missing_field' }]);
  });
});

describe('listing issues', () => {
  function links(header: string | string[] | number | undefined): Record<string, string> {
    const out: Record<string, string> = {};
    for (const part of String(header ?? '').split(', ').filter(Boolean)) {
      const match = /^<([^>]+)>; rel="(\w+)"$/.exec(part);
      if (match?.[1] && match[2]) out[match[2]] = match[1];
    }
    return out;
  }

  it('pages with Link headers: next/last until the last page, prev/first after the first, other parameters kept', async () => {
    const clock = manualClock();
    const sim = simulator({ now: clock.now });
    for (let index = 1; index <= 7; index += 1) {
      await create(sim, { title: `issue ${index}` });
      clock.advance(1);
    }
    const seen: number[] = [];
    let url: string | undefined = `${ISSUES}?state=all&direction=asc&per_page=3`;
    const pages: Record<string, string>[] = [];
    while (url !== undefined) {
      const response = await sim.app.inject({ method: 'GET', url, headers: auth });
      expect(response.statusCode).toBe(200);
      seen.push(...response.json<{ number: number }[]>().map((issue) => issue.number));
      const rel = links(response.headers['link']);
      pages.push(rel);
      url = rel['next'] === undefined ? undefined : new URL(rel['next']).pathname + new URL(rel['next']).search;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(pages).toHaveLength(3);
    expect(Object.keys(pages[0]!).sort()).toEqual(['last', 'next']);
    expect(new URL(pages[0]!['next']!).searchParams.get('page')).toBe('2');
    expect(new URL(pages[0]!['last']!).searchParams.get('page')).toBe('3');
    expect(new URL(pages[0]!['next']!).searchParams.get('direction')).toBe('asc');
    expect(new URL(pages[0]!['next']!).searchParams.get('per_page')).toBe('3');
    expect(Object.keys(pages[1]!).sort()).toEqual(['first', 'last', 'next', 'prev']);
    expect(Object.keys(pages[2]!).sort()).toEqual(['first', 'prev']);
  });

  it('has no Link header when everything fits on one page, newest first by default, per_page capped at 100', async () => {
    const clock = manualClock();
    const sim = simulator({ now: clock.now });
    for (let index = 1; index <= 3; index += 1) {
      await create(sim, { title: `issue ${index}` });
      clock.advance(1);
    }
    const response = await sim.app.inject({ method: 'GET', url: `${ISSUES}?per_page=500`, headers: auth });
    expect(response.headers['link']).toBeUndefined();
    expect(response.json<{ number: number }[]>().map((issue) => issue.number)).toEqual([3, 2, 1]);
  });

  it('filters by since (updated at or after), state, and lists pull requests with a pull_request key', async () => {
    const clock = manualClock();
    const sim = simulator({ now: clock.now });
    await create(sim, { title: 'old' }); // 05:00:00
    clock.advance(60);
    await create(sim, { title: 'touched' }); // 05:01:00
    clock.advance(60);
    await create(sim, { title: 'closed later' }); // 05:02:00
    clock.advance(60);
    await sim.app.inject({ method: 'PATCH', url: `${ISSUES}/3`, headers: auth, payload: { state: 'closed' } }); // 05:03:00
    await sim.app.inject({ method: 'PATCH', url: `${ISSUES}/2`, headers: auth, payload: { body: 'edited' } }); // 05:03:00
    clock.advance(60);
    sim.control.createPullRequest('acme/widgets', { title: 'a PR' }); // 05:04:00

    const since = await sim.app.inject({
      method: 'GET',
      url: `${ISSUES}?state=all&since=2026-11-24T05:03:00Z&sort=updated&direction=asc`,
      headers: auth,
    });
    const items = since.json<{ number: number; title: string; pull_request?: unknown }[]>();
    expect(items.map((item) => item.number)).toEqual([2, 3, 4]);
    expect(items[2]?.pull_request).toMatchObject({ url: expect.stringContaining('/pulls/4') });
    expect(items[0]?.pull_request).toBeUndefined();

    const open = await sim.app.inject({ method: 'GET', url: ISSUES, headers: auth });
    expect(open.json<{ number: number }[]>().map((item) => item.number)).toEqual([4, 2, 1]);

    const invalid = await sim.app.inject({ method: 'GET', url: `${ISSUES}?since=yesterday`, headers: auth });
    expect(invalid.statusCode).toBe(422);
    expect(invalid.json<ErrorJson>().errors[0]).toMatchObject({ field: 'since', code: 'invalid' });
  });
});

describe('the authenticated user', () => {
  it('answers GET /user with the token’s user, the same as issues carry, counted and with an ETag', async () => {
    const clock = manualClock('2026-11-24T05:00:00.900Z');
    const sim = simulator({ now: clock.now });
    const response = await sim.app.inject({ method: 'GET', url: '/user', headers: auth });
    expect(response.statusCode).toBe(200);
    const user = response.json<{ id: number; url: string }>();
    expect(user).toMatchObject({
      login: 'switchyard-bot',
      id: expect.any(Number),
      node_id: expect.stringMatching(/^U_/),
      type: 'User',
      site_admin: false,
      name: null,
      html_url: 'https://github.com/switchyard-bot',
      created_at: '2026-11-24T05:00:00Z',
    });
    expect(user.url).toMatch(/\/users\/switchyard-bot$/);
    expect(response.headers['x-ratelimit-remaining']).toBe('4999');

    const created = await create(sim, { title: 'mine' });
    expect(created.json<{ user: unknown }>().user).toMatchObject({ login: 'switchyard-bot', id: user.id });

    const again = await sim.app.inject({ method: 'GET', url: '/user', headers: { ...auth, 'if-none-match': String(response.headers['etag']) } });
    expect(again.statusCode).toBe(304);
    expect(again.headers['x-ratelimit-remaining']).toBe('4998');
  });

  it('is the login given with the token, and 401 without a valid token', async () => {
    const sim = simulator({ tokens: [TOKEN, { token: 'ghp_other', login: 'Other-Bot' }] });
    const other = await sim.app.inject({ method: 'GET', url: '/user', headers: { authorization: 'Bearer ghp_other' } });
    expect(other.json()).toMatchObject({ login: 'Other-Bot' });
    expect((await sim.app.inject({ method: 'GET', url: '/user' })).json()).toMatchObject({ message: 'Requires authentication' });
    const bad = await sim.app.inject({ method: 'GET', url: '/user', headers: { authorization: 'Bearer nope' } });
    expect(bad.statusCode).toBe(401);
    expect(bad.json()).toMatchObject({ message: 'Bad credentials' });
  });
});

describe('finding one’s own issues again (creator)', () => {
  const other = { authorization: 'Bearer ghp_other' };

  async function seeded() {
    const clock = manualClock();
    const sim = simulator({ now: clock.now, tokens: [TOKEN, { token: 'ghp_other', login: 'other-bot' }] });
    for (const [index, headers] of [auth, other, auth, auth, other].entries()) {
      await sim.app.inject({ method: 'POST', url: ISSUES, headers, payload: { title: `issue ${index + 1}` } });
      clock.advance(1);
    }
    sim.control.createPullRequest('acme/widgets', { title: 'a PR', login: 'switchyard-bot' }); // number 6
    await sim.app.inject({ method: 'PATCH', url: `${ISSUES}/3`, headers: auth, payload: { state: 'closed' } });
    return sim;
  }
  const numbers = (response: { json: <T>() => T }) => response.json<{ number: number }[]>().map((issue) => issue.number);

  it('lists only what that login opened, pull requests included, matching the login case-insensitively', async () => {
    const sim = await seeded();
    const mine = await sim.app.inject({
      method: 'GET',
      url: `${ISSUES}?creator=Switchyard-BOT&state=all&sort=created&direction=desc`,
      headers: auth,
    });
    expect(mine.statusCode).toBe(200);
    expect(numbers(mine)).toEqual([6, 4, 3, 1]);
    const open = await sim.app.inject({ method: 'GET', url: `${ISSUES}?creator=switchyard-bot`, headers: auth });
    expect(numbers(open)).toEqual([6, 4, 1]);
    const theirs = await sim.app.inject({ method: 'GET', url: `${ISSUES}?creator=other-bot&direction=asc`, headers: auth });
    expect(numbers(theirs)).toEqual([2, 5]);
  });

  it('keeps creator in the Link headers of every page', async () => {
    const sim = await seeded();
    const first = await sim.app.inject({
      method: 'GET',
      url: `${ISSUES}?creator=switchyard-bot&state=all&sort=created&direction=desc&per_page=3`,
      headers: auth,
    });
    expect(numbers(first)).toEqual([6, 4, 3]);
    const next = /<([^>]+)>; rel="next"/.exec(String(first.headers['link']))?.[1] ?? '';
    expect(Object.fromEntries(new URL(next).searchParams)).toEqual({
      creator: 'switchyard-bot',
      state: 'all',
      sort: 'created',
      direction: 'desc',
      per_page: '3',
      page: '2',
    });
    const second = await sim.app.inject({ method: 'GET', url: new URL(next).pathname + new URL(next).search, headers: auth });
    expect(numbers(second)).toEqual([1]);
    expect(String(second.headers['link'])).toContain('creator=switchyard-bot');
  });

  it('answers 200 with [] for a login that opened nothing or does not exist', async () => {
    const sim = await seeded();
    for (const login of ['octocat', 'no-such-user-anywhere']) {
      const response = await sim.app.inject({ method: 'GET', url: `${ISSUES}?creator=${login}&state=all`, headers: auth });
      expect(response.statusCode).toBe(200);
      expect(response.json()).toEqual([]);
      expect(response.headers['link']).toBeUndefined();
    }
  });
});

describe('conditional requests', () => {
  it('answers a matching If-None-Match with 304, no body, and does not count it', async () => {
    const sim = simulator();
    await create(sim, { title: 'x' });
    const first = await sim.app.inject({ method: 'GET', url: `${ISSUES}/1`, headers: auth });
    const etag = first.headers['etag'];
    expect(etag).toMatch(/^W\/"[0-9a-f]+"$/);
    const remaining = Number(first.headers['x-ratelimit-remaining']);

    const again = await sim.app.inject({ method: 'GET', url: `${ISSUES}/1`, headers: { ...auth, 'if-none-match': String(etag) } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
    expect(again.headers['etag']).toBe(etag);
    expect(Number(again.headers['x-ratelimit-remaining'])).toBe(remaining);

    // The strong form of the same tag matches too (weak comparison).
    const strong = await sim.app.inject({
      method: 'GET',
      url: `${ISSUES}/1`,
      headers: { ...auth, 'if-none-match': `"other", ${String(etag).slice(2)}` },
    });
    expect(strong.statusCode).toBe(304);

    await sim.app.inject({ method: 'PATCH', url: `${ISSUES}/1`, headers: auth, payload: { title: 'changed' } });
    const changed = await sim.app.inject({ method: 'GET', url: `${ISSUES}/1`, headers: { ...auth, 'if-none-match': String(etag) } });
    expect(changed.statusCode).toBe(200);
    expect(changed.headers['etag']).not.toBe(etag);
    expect(Number(changed.headers['x-ratelimit-remaining'])).toBe(remaining - 2);
  });

  it('gives lists an ETag that changes with the page content', async () => {
    const sim = simulator();
    const empty = await sim.app.inject({ method: 'GET', url: ISSUES, headers: auth });
    await create(sim, { title: 'x' });
    const one = await sim.app.inject({ method: 'GET', url: ISSUES, headers: { ...auth, 'if-none-match': String(empty.headers['etag']) } });
    expect(one.statusCode).toBe(200);
    const same = await sim.app.inject({ method: 'GET', url: ISSUES, headers: { ...auth, 'if-none-match': String(one.headers['etag']) } });
    expect(same.statusCode).toBe(304);
  });
});

describe('primary rate limit', () => {
  it('sends the headers on every authenticated answer and refuses with 403 and remaining 0 once exhausted', async () => {
    const clock = manualClock();
    const sim = simulator({ now: clock.now, rateLimit: 3 });
    const first = await sim.app.inject({ method: 'GET', url: ISSUES, headers: auth });
    expect(first.headers).toMatchObject({
      'x-ratelimit-limit': '3',
      'x-ratelimit-remaining': '2',
      'x-ratelimit-used': '1',
      'x-ratelimit-reset': String(Date.parse('2026-11-24T06:00:00Z') / 1000),
      'x-ratelimit-resource': 'core',
    });
    const missing = await sim.app.inject({ method: 'GET', url: '/repos/acme/nothing/issues', headers: auth });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers['x-ratelimit-remaining']).toBe('1');
    await create(sim, { title: 'last one' });

    const refused = await create(sim, { title: 'one too many' });
    expect(refused.statusCode).toBe(403);
    expect(refused.headers['x-ratelimit-remaining']).toBe('0');
    expect(refused.json()).toMatchObject({
      message: expect.stringMatching(/^API rate limit exceeded for user ID \d+\./),
      documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
    });
    expect(sim.control.issues('acme/widgets').map((issue) => issue['title'])).toEqual(['last one']);
    const read = await sim.app.inject({ method: 'GET', url: ISSUES, headers: auth });
    expect(read.statusCode).toBe(403);

    // GET /rate_limit does not count and reports the same numbers.
    const status = await sim.app.inject({ method: 'GET', url: '/rate_limit', headers: auth });
    expect(status.statusCode).toBe(200);
    expect(status.json<{ resources: { core: unknown } }>().resources.core).toMatchObject({ limit: 3, remaining: 0, used: 3 });

    // A new window starts an hour after the first counted request.
    clock.advance(3600);
    expect((await sim.app.inject({ method: 'GET', url: ISSUES, headers: auth })).statusCode).toBe(200);
  });

  it('can be exhausted and reset through the control API', async () => {
    const sim = simulator();
    const set = await sim.app.inject({ method: 'PUT', url: '/_sim/rate-limit', payload: { token: TOKEN, remaining: 0 } });
    expect(set.json()).toMatchObject({ remaining: 0, limit: 5000 });
    expect(set.body).not.toContain(TOKEN);
    expect((await create(sim, { title: 'x' })).statusCode).toBe(403);
    await sim.app.inject({ method: 'POST', url: '/_sim/rate-limit/reset', payload: {} });
    expect((await create(sim, { title: 'x' })).statusCode).toBe(201);
  });

  it('can answer 429 instead of 403', async () => {
    const sim = simulator({ rateLimit: 1, rateLimitStatus: 429 });
    await sim.app.inject({ method: 'GET', url: ISSUES, headers: auth });
    expect((await sim.app.inject({ method: 'GET', url: ISSUES, headers: auth })).statusCode).toBe(429);
  });
});

describe('fault injection', () => {
  it('answers the next N matching requests with the injected status and retry-after, counting every request', async () => {
    const sim = simulator();
    const injected = await sim.app.inject({
      method: 'POST',
      url: '/_sim/faults',
      payload: { response: 503, count: 2, retryAfterSeconds: 1, method: 'POST', route: '/repos/{owner}/{repo}/issues' },
    });
    expect(injected.statusCode).toBe(201);
    // A request to another route is not affected.
    expect((await sim.app.inject({ method: 'GET', url: ISSUES, headers: auth })).statusCode).toBe(200);

    const statuses: number[] = [];
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const response = await create(sim, { title: 'x' });
      statuses.push(response.statusCode);
      if (response.statusCode === 503) expect(response.headers['retry-after']).toBe('1');
    }
    expect(statuses).toEqual([503, 503, 201]);
    expect(sim.control.requestCount('POST', '/repos/{owner}/{repo}/issues')).toBe(3);
    const counters = (await sim.app.inject({ method: 'GET', url: '/_sim/counters' })).json();
    expect(counters).toMatchObject({
      requests: { 'POST /repos/{owner}/{repo}/issues': 3, 'GET /repos/{owner}/{repo}/issues': 1 },
      responses: { 'POST /repos/{owner}/{repo}/issues': { '503': 2, '201': 1 } },
      issuesCreated: 1,
    });
    expect(sim.control.issues('acme/widgets')).toHaveLength(1);
  });

  it('can lose the answer after the request took effect', async () => {
    const sim = simulator();
    sim.control.injectFault({ response: 502, when: 'after' });
    const response = await create(sim, { title: 'x' });
    expect(response.statusCode).toBe(502);
    expect(sim.control.issues('acme/widgets')).toHaveLength(1);
  });

  it('answers secondary rate limits with GitHub’s message', async () => {
    const sim = simulator();
    sim.control.injectFault({ response: 429, retryAfterSeconds: 30 });
    const response = await create(sim, { title: 'x' });
    expect(response.statusCode).toBe(429);
    expect(response.headers['retry-after']).toBe('30');
    expect(response.json<ErrorJson>().message).toMatch(/secondary rate limit/);
  });

  it('answers 503 to everything while down and adds latency when asked', async () => {
    const sim = simulator();
    await sim.app.inject({ method: 'PUT', url: '/_sim/mode', payload: { mode: 'unavailable' } });
    expect((await sim.app.inject({ method: 'GET', url: '/zen' })).statusCode).toBe(503);
    expect((await create(sim, { title: 'x' })).statusCode).toBe(503);
    // The control API keeps answering.
    expect((await sim.app.inject({ method: 'PUT', url: '/_sim/mode', payload: { mode: 'up' } })).statusCode).toBe(200);

    sim.control.setLatency(120);
    const started = performance.now();
    expect((await sim.app.inject({ method: 'GET', url: '/zen' })).statusCode).toBe(200);
    expect(performance.now() - started).toBeGreaterThanOrEqual(110);
  });

  it('refuses malformed control requests naming the field', async () => {
    const sim = simulator();
    const response = await sim.app.inject({ method: 'POST', url: '/_sim/faults', payload: { response: 200 } });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ field: 'response' });
  });

  it('resets to the seeded state', async () => {
    const sim = simulator();
    await create(sim, { title: 'x' });
    sim.control.injectFault({ response: 500, count: 5 });
    await sim.app.inject({ method: 'POST', url: '/_sim/reset' });
    expect(sim.control.issues('acme/widgets')).toEqual([]);
    expect(sim.control.pendingFaults()).toEqual([]);
    expect(sim.control.counters().requests).toEqual({});
    expect((await create(sim, { title: 'y' })).json<IssueJson>().number).toBe(1);
  });
});

describe('delayed answers', () => {
  const ROUTE = '/repos/{owner}/{repo}/issues';
  const since = (started: number) => performance.now() - started;

  it('refuses a stall without delayMs, and delays out of range, naming delayMs', async () => {
    const sim = simulator();
    for (const payload of [{ response: 'stall' }, { response: 'stall', delayMs: 600001 }, { response: 503, delayMs: 1.5 }]) {
      const response = await sim.app.inject({ method: 'POST', url: '/_sim/faults', payload });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ field: 'delayMs' });
    }
    expect(() => sim.control.injectFault({ response: 'stall' })).toThrow(/delayMs/);
    expect(() => createGithubSimulator({ tokens: [TOKEN], serverTimeoutMs: 0 })).toThrow(/serverTimeoutMs/);
  });

  it('a `before` stall within the server timeout waits, then carries the request out and answers normally', async () => {
    const sim = simulator({ serverTimeoutMs: 500 });
    sim.control.injectFault({ response: 'stall', delayMs: 80, method: 'POST', route: ROUTE });
    const started = performance.now();
    const pending = create(sim, { title: 'slow' });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(sim.control.issues('acme/widgets')).toEqual([]); // not yet carried out
    const response = await pending;
    expect(since(started)).toBeGreaterThanOrEqual(75);
    expect(response.statusCode).toBe(201);
    expect(response.headers['x-ratelimit-remaining']).toBe('4999');
    expect(sim.control.counters()).toMatchObject({ issuesCreated: 1, responses: { [`POST ${ROUTE}`]: { '201': 1 } } });
  });

  it('a `before` stall longer than the server timeout has no effect and gets GitHub’s timeout answer at the timeout', async () => {
    const sim = simulator({ serverTimeoutMs: 50 });
    sim.control.injectFault({ response: 'stall', delayMs: 200, method: 'POST', route: ROUTE });
    const started = performance.now();
    const response = await create(sim, { title: 'never' });
    const took = since(started);
    expect(took).toBeGreaterThanOrEqual(45);
    expect(took).toBeLessThan(180);
    expect(response.statusCode).toBe(502);
    expect(response.json()).toEqual({ message: 'Server Error' });
    expect(response.headers['x-github-request-id']).toEqual(expect.any(String));
    await new Promise((resolve) => setTimeout(resolve, 200)); // past the stall: still nothing
    expect(sim.control.issues('acme/widgets')).toEqual([]);
    expect(sim.control.counters()).toMatchObject({ issuesCreated: 0, responses: { [`POST ${ROUTE}`]: { '502': 1 } } });
    // Not charged: GitHub never got to the request.
    const next = await create(sim, { title: 'next' });
    expect(next.headers['x-ratelimit-remaining']).toBe('4999');
  });

  it('delays a `before` status or destroy fault by delayMs, without effect', async () => {
    const sim = simulator();
    sim.control.injectFault({ response: 503, delayMs: 50, method: 'POST', route: ROUTE });
    sim.control.injectFault({ response: 'destroy', delayMs: 50, method: 'POST', route: ROUTE });
    let started = performance.now();
    expect((await create(sim, { title: 'x' })).statusCode).toBe(503);
    expect(since(started)).toBeGreaterThanOrEqual(45);
    started = performance.now();
    await expect(create(sim, { title: 'x' })).rejects.toMatchObject({ code: 'LIGHT_ECONNRESET' });
    expect(since(started)).toBeGreaterThanOrEqual(45);
    expect(sim.control.issues('acme/widgets')).toEqual([]);
    expect(sim.control.counters().responses[`POST ${ROUTE}`]).toEqual({ '503': 1, destroy: 1 });
  });

  it('an `after` stall applies the request at once and answers it delayMs later', async () => {
    const sim = simulator({ serverTimeoutMs: 20 }); // the server timeout does not apply: the work is done
    sim.control.injectFault({ response: 'stall', delayMs: 80, when: 'after', method: 'POST', route: ROUTE });
    let answered = false;
    const started = performance.now();
    const pending = create(sim, { title: 'late answer' }).finally(() => {
      answered = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(sim.control.issues('acme/widgets')).toHaveLength(1);
    expect(sim.control.counters().issuesCreated).toBe(1);
    expect(answered).toBe(false);
    const response = await pending;
    expect(since(started)).toBeGreaterThanOrEqual(75);
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({ number: 1, title: 'late answer' });
  });

  it('leaves a client that gave up with the write done (over a real socket)', async () => {
    const sim = simulator();
    const url = await sim.listen();
    sim.control.injectFault({ response: 'stall', delayMs: 2000, when: 'after', method: 'POST', route: ROUTE });
    const outcome = await fetch(`${url}${ISSUES}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'ambiguous' }),
      signal: AbortSignal.timeout(150),
    }).then(
      (response) => `answered ${response.status}`,
      (error: Error) => error.name,
    );
    expect(outcome).toBe('TimeoutError');
    // The write does not depend on the client waiting (and closing the simulator cuts the stall short).
    const deadline = performance.now() + 1000;
    while (sim.control.issues('acme/widgets').length === 0 && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(sim.control.issues('acme/widgets').map((issue) => issue['title'])).toEqual(['ambiguous']);
  });

  it('ends pending delays when the simulator closes, dropping their connections', async () => {
    const sim = createGithubSimulator({ tokens: [TOKEN], repos: ['acme/widgets'] });
    sim.control.injectFault({ response: 'stall', delayMs: 5000 });
    const pending = create(sim, { title: 'x' });
    await new Promise((resolve) => setTimeout(resolve, 10));
    const started = performance.now();
    await sim.close();
    expect(since(started)).toBeLessThan(1000);
    await expect(pending).rejects.toMatchObject({ code: 'LIGHT_ECONNRESET' });
  });
});

describe('after-faults on every write route', () => {
  type Write = { name: string; method: 'POST' | 'PATCH'; route: string; url: string; payload: Record<string, unknown>; ok: number };
  const writes: Write[] = [
    { name: 'create issue', method: 'POST', route: '/repos/{owner}/{repo}/issues', url: ISSUES, payload: { title: 'new' }, ok: 201 },
    { name: 'update issue', method: 'PATCH', route: '/repos/{owner}/{repo}/issues/{number}', url: `${ISSUES}/1`, payload: { state: 'closed' }, ok: 200 },
    { name: 'add comment', method: 'POST', route: '/repos/{owner}/{repo}/issues/{number}/comments', url: `${ISSUES}/1/comments`, payload: { body: 'seen' }, ok: 201 },
  ];
  const kinds = [
    { kind: 'status', fault: { response: 502, delayMs: 20 } },
    { kind: 'destroy', fault: { response: 'destroy', delayMs: 20 } },
    { kind: 'stall', fault: { response: 'stall', delayMs: 40 } },
  ] as const;
  const cases = writes.flatMap((write) => kinds.map((kind) => ({ ...write, ...kind })));

  /** What the write did to the store, and the counter that records it. */
  function effect(sim: GithubSimulator, name: string) {
    const issues = sim.control.issues('acme/widgets');
    const counters = sim.control.counters();
    if (name === 'create issue') return { applied: issues.length === 2, counted: counters.issuesCreated === 2 };
    const issue = issues[0]!;
    if (name === 'update issue') return { applied: issue['state'] === 'closed', counted: counters.issuesUpdated === 1 };
    return { applied: issue['comments'] === 1, counted: counters.commentsCreated === 1 };
  }

  it.each(cases)('$name × $kind: the write is applied and counted, then the answer is replaced, dropped or late', async (write) => {
    const sim = simulator();
    await create(sim, { title: 'existing' });
    expect(effect(sim, write.name)).toEqual({ applied: false, counted: false });
    // Another route's request does not take the fault.
    await sim.app.inject({ method: 'GET', url: `${ISSUES}/1`, headers: auth });
    sim.control.injectFault({ ...write.fault, when: 'after', method: write.method, route: write.route });
    const key = `${write.method} ${write.route}`;
    const answeredBefore = sim.control.counters().responses[key] ?? {};

    const started = performance.now();
    const answer = sim.app.inject({ method: write.method, url: write.url, headers: auth, payload: write.payload });
    if (write.kind === 'destroy') {
      await expect(answer).rejects.toMatchObject({ code: 'LIGHT_ECONNRESET' });
    } else {
      expect((await answer).statusCode).toBe(write.kind === 'status' ? 502 : write.ok);
    }
    expect(performance.now() - started).toBeGreaterThanOrEqual(write.fault.delayMs - 5);
    expect(effect(sim, write.name)).toEqual({ applied: true, counted: true });
    const shown = write.kind === 'status' ? '502' : write.kind === 'destroy' ? 'destroy' : String(write.ok);
    expect(sim.control.counters().responses[key]).toEqual({ ...answeredBefore, [shown]: (answeredBefore[shown] ?? 0) + 1 });
    expect(sim.control.pendingFaults()).toEqual([]);
  });
});

describe('faults under concurrency', () => {
  const ROUTE = '/repos/{owner}/{repo}/issues';

  it('a fault with count N meets N requests in flight, and their delays overlap', async () => {
    const sim = simulator();
    sim.control.injectFault({ response: 'stall', delayMs: 60, count: 5, when: 'after', method: 'POST', route: ROUTE });
    const started = performance.now();
    const responses = await Promise.all(Array.from({ length: 5 }, (_, index) => create(sim, { title: `parallel ${index}` })));
    const took = performance.now() - started;
    expect(responses.map((response) => response.statusCode)).toEqual([201, 201, 201, 201, 201]);
    expect(new Set(responses.map((response) => response.json<IssueJson>().number))).toEqual(new Set([1, 2, 3, 4, 5]));
    expect(took).toBeGreaterThanOrEqual(55);
    expect(took).toBeLessThan(240); // five in a row would take 300
    expect(sim.control.pendingFaults()).toEqual([]);
    expect((await create(sim, { title: 'after' })).statusCode).toBe(201);
  });

  it.each([
    ['before', 503, 0],
    ['after', 502, 4],
  ] as const)('N `%s` faults are taken by exactly N of N+1 concurrent requests', async (when, status, appliedByFaulted) => {
    const sim = simulator();
    sim.control.injectFault({ response: status, count: 4, when, method: 'POST', route: ROUTE });
    const responses = await Promise.all(Array.from({ length: 5 }, (_, index) => create(sim, { title: `parallel ${index}` })));
    const statuses = responses.map((response) => response.statusCode).sort();
    expect(statuses).toEqual([201, status, status, status, status].sort());
    expect(sim.control.issues('acme/widgets')).toHaveLength(appliedByFaulted + 1);
    expect(sim.control.counters()).toMatchObject({ issuesCreated: appliedByFaulted + 1, requests: { [`POST ${ROUTE}`]: 5 } });
    expect(sim.control.pendingFaults()).toEqual([]);
  });

  it('faults injected over HTTP while requests are held back apply to the requests that come after', async () => {
    const sim = simulator();
    sim.control.injectFault({ response: 'stall', delayMs: 80, method: 'POST', route: ROUTE });
    const held = create(sim, { title: 'held' });
    await new Promise((resolve) => setTimeout(resolve, 10));
    const injected = await sim.app.inject({
      method: 'POST',
      url: '/_sim/faults',
      payload: { response: 'destroy', when: 'after', method: 'POST', route: ROUTE },
    });
    expect(injected.json()).toMatchObject({ response: 'destroy', when: 'after', count: 1 });
    await expect(create(sim, { title: 'dropped' })).rejects.toMatchObject({ code: 'LIGHT_ECONNRESET' });
    expect((await held).statusCode).toBe(201);
    expect(sim.control.issues('acme/widgets').map((issue) => issue['title'])).toEqual(['dropped', 'held']);
  });
});
