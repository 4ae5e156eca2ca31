import { isoSeconds } from './responses.js';
import type { SimComment, SimIssue, SimLabel, SimRepo, SimUser } from './store.js';

/** Where rendered `url` fields point: the simulator's own address for the API, GitHub's for HTML pages. */
export interface UrlBases {
  readonly api: string;
  readonly html: string;
}

function nodeId(prefix: string, id: number): string {
  return `${prefix}${Buffer.from(`0:${id}`).toString('base64url')}`;
}

/** The "simple user" object GitHub embeds as `user`, `assignees[]`, `closed_by`. */
export function renderUser(user: SimUser, urls: UrlBases) {
  return {
    login: user.login,
    id: user.id,
    node_id: nodeId('U_kgDO', user.id),
    avatar_url: `https://avatars.githubusercontent.com/u/${user.id}?v=4`,
    gravatar_id: '',
    url: `${urls.api}/users/${user.login}`,
    html_url: `${urls.html}/${user.login}`,
    type: 'User',
    site_admin: false,
  };
}

/**
 * `GET /user` (https://docs.github.com/rest/users/users#get-the-authenticated-user): the public profile of the
 * token's user. A simulated user has no profile text, so those fields are null, as on GitHub when unset.
 */
export function renderAuthenticatedUser(user: SimUser, urls: UrlBases, profile: { createdAt: Date; publicRepos: number }) {
  const api = `${urls.api}/users/${user.login}`;
  const { type, site_admin, ...simple } = renderUser(user, urls);
  return {
    ...simple,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type,
    site_admin,
    name: null,
    company: null,
    blog: '',
    location: null,
    email: null,
    hireable: null,
    bio: null,
    twitter_username: null,
    public_repos: profile.publicRepos,
    public_gists: 0,
    followers: 0,
    following: 0,
    created_at: isoSeconds(profile.createdAt),
    updated_at: isoSeconds(profile.createdAt),
  };
}

export function renderLabel(repo: SimRepo, label: SimLabel, urls: UrlBases) {
  return {
    id: label.id,
    node_id: nodeId('LA_kwDO', label.id),
    url: `${urls.api}/repos/${repo.owner.login}/${repo.name}/labels/${encodeURIComponent(label.name)}`,
    name: label.name,
    color: label.color,
    default: label.default,
    description: label.description,
  };
}

export function renderRepo(repo: SimRepo, urls: UrlBases) {
  const fullName = `${repo.owner.login}/${repo.name}`;
  return {
    id: repo.id,
    node_id: nodeId('R_kgDO', repo.id),
    name: repo.name,
    full_name: fullName,
    private: false,
    owner: renderUser(repo.owner, urls),
    html_url: `${urls.html}/${fullName}`,
    url: `${urls.api}/repos/${fullName}`,
    has_issues: true,
    open_issues_count: repo.issues.filter((issue) => issue.state === 'open').length,
  };
}

/** The full issue object of the REST API (https://docs.github.com/rest/issues/issues#get-an-issue). */
export function renderIssue(repo: SimRepo, issue: SimIssue, urls: UrlBases) {
  const repoUrl = `${urls.api}/repos/${repo.owner.login}/${repo.name}`;
  const url = `${repoUrl}/issues/${issue.number}`;
  const htmlKind = issue.pull_request ? 'pull' : 'issues';
  const html = `${urls.html}/${repo.owner.login}/${repo.name}/${htmlKind}/${issue.number}`;
  const assignees = issue.assignees.map((user) => renderUser(user, urls));
  const rendered: Record<string, unknown> = {
    url,
    repository_url: repoUrl,
    labels_url: `${url}/labels{/name}`,
    comments_url: `${url}/comments`,
    events_url: `${url}/events`,
    html_url: html,
    id: issue.id,
    node_id: nodeId(issue.pull_request ? 'PR_kwDO' : 'I_kwDO', issue.id),
    number: issue.number,
    title: issue.title,
    user: renderUser(issue.user, urls),
    labels: issue.labels.flatMap((name) => {
      const label = repo.labels.get(name.toLowerCase());
      return label ? [renderLabel(repo, label, urls)] : [];
    }),
    state: issue.state,
    locked: false,
    assignee: assignees[0] ?? null,
    assignees,
    milestone: null,
    comments: issue.comments.length,
    created_at: isoSeconds(issue.created_at),
    updated_at: isoSeconds(issue.updated_at),
    closed_at: issue.closed_at === null ? null : isoSeconds(issue.closed_at),
    author_association: issue.user.login.toLowerCase() === repo.owner.login.toLowerCase() ? 'OWNER' : 'COLLABORATOR',
    active_lock_reason: null,
    body: issue.body,
    closed_by: issue.closed_by === null ? null : renderUser(issue.closed_by, urls),
    timeline_url: `${url}/timeline`,
    state_reason: issue.state_reason,
  };
  if (issue.pull_request) {
    const pull = `${repoUrl}/pulls/${issue.number}`;
    rendered['pull_request'] = { url: pull, html_url: html, diff_url: `${html}.diff`, patch_url: `${html}.patch`, merged_at: null };
  }
  return rendered;
}

export function renderComment(repo: SimRepo, issue: SimIssue, comment: SimComment, urls: UrlBases) {
  const repoUrl = `${urls.api}/repos/${repo.owner.login}/${repo.name}`;
  return {
    id: comment.id,
    node_id: nodeId('IC_kwDO', comment.id),
    url: `${repoUrl}/issues/comments/${comment.id}`,
    html_url: `${urls.html}/${repo.owner.login}/${repo.name}/issues/${issue.number}#issuecomment-${comment.id}`,
    issue_url: `${repoUrl}/issues/${issue.number}`,
    body: comment.body,
    user: renderUser(comment.user, urls),
    created_at: isoSeconds(comment.created_at),
    updated_at: isoSeconds(comment.updated_at),
    author_association: 'COLLABORATOR',
  };
}
