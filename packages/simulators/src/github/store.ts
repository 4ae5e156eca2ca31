import { DOCS, isoSeconds, notFound, problemsParsingJson, validationFailed, wholeSeconds, type ValidationErrorEntry } from './responses.js';

/**
 * The simulator's in-memory GitHub: repositories (looked up case-insensitively, as GitHub does), their issues and
 * pull requests (one number sequence, as on GitHub), labels and comments. Operations validate their input the way
 * the REST API does and throw GithubHttpError with GitHub's status and body.
 */

export interface SimUser {
  readonly login: string;
  readonly id: number;
}

export interface SimLabel {
  readonly id: number;
  readonly name: string;
  readonly color: string;
  readonly description: string | null;
  readonly default: boolean;
}

export interface SimComment {
  readonly id: number;
  readonly body: string;
  readonly user: SimUser;
  readonly created_at: Date;
  readonly updated_at: Date;
}

export interface SimIssue {
  readonly id: number;
  readonly number: number;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  state_reason: 'completed' | 'not_planned' | 'reopened' | 'duplicate' | null;
  /** Label names in the order they were given; rendered from the repository's label objects. */
  labels: string[];
  assignees: SimUser[];
  readonly user: SimUser;
  comments: SimComment[];
  readonly created_at: Date;
  updated_at: Date;
  closed_at: Date | null;
  closed_by: SimUser | null;
  /** Pull requests live in the issues list too, marked by a `pull_request` key. */
  readonly pull_request: boolean;
}

export interface SimRepo {
  readonly id: number;
  readonly owner: SimUser;
  readonly name: string;
  readonly labels: Map<string, SimLabel>;
  readonly issues: SimIssue[];
  /** Lower-cased logins that may be assigned (GitHub: users with access to the repository). */
  readonly assignable: Set<string>;
}

export interface ListQuery {
  state: 'open' | 'closed' | 'all';
  sort: 'created' | 'updated' | 'comments';
  direction: 'asc' | 'desc';
  since: Date | undefined;
  /** Only items opened by this login (compared case-insensitively, as logins are). */
  creator: string | undefined;
  labels: string[];
  perPage: number;
  page: number;
}

const NAME = /^[A-Za-z0-9_.-]{1,100}$/;

/** GitHub's default color for labels created implicitly by naming them on an issue. */
const DEFAULT_LABEL_COLOR = 'ededed';

type Body = Record<string, unknown>;

function isObject(value: unknown): value is Body {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class GithubStore {
  private readonly now: () => Date;
  private readonly repos = new Map<string, SimRepo>();
  private readonly users = new Map<string, SimUser>();
  private nextIds = { user: 1001, repo: 700000001, issue: 2000000001, label: 5000000001, comment: 3000000001 };

  constructor(now: () => Date) {
    this.now = now;
  }

  /** The current time as GitHub records it: whole seconds. */
  private stamp(): Date {
    return wholeSeconds(this.now());
  }

  user(login: string): SimUser {
    const key = login.toLowerCase();
    let user = this.users.get(key);
    if (user === undefined) {
      user = { login, id: this.nextIds.user++ };
      this.users.set(key, user);
    }
    return user;
  }

  addRepo(owner: string, name: string, collaborators: readonly string[] = []): SimRepo {
    if (!NAME.test(owner) || !NAME.test(name)) {
      throw new Error(`invalid repository name ${owner}/${name}: letters, digits, '.', '-' and '_' only`);
    }
    const key = `${owner}/${name}`.toLowerCase();
    const existing = this.repos.get(key);
    if (existing) {
      for (const login of collaborators) existing.assignable.add(login.toLowerCase());
      return existing;
    }
    const repo: SimRepo = {
      id: this.nextIds.repo++,
      owner: this.user(owner),
      name,
      labels: new Map(),
      issues: [],
      assignable: new Set([owner.toLowerCase(), ...collaborators.map((login) => login.toLowerCase())]),
    };
    for (const login of collaborators) this.user(login);
    this.repos.set(key, repo);
    return repo;
  }

  listRepos(): SimRepo[] {
    return [...this.repos.values()];
  }

  /** Unknown repositories are 404 — GitHub answers the same for ones the token cannot see. */
  repo(owner: string, name: string, documentationUrl: string): SimRepo {
    const repo = this.repos.get(`${owner}/${name}`.toLowerCase());
    if (repo === undefined) throw notFound(documentationUrl);
    return repo;
  }

  issue(repo: SimRepo, numberParam: string, documentationUrl: string): SimIssue {
    const number = /^\d{1,9}$/.test(numberParam) ? Number(numberParam) : NaN;
    const issue = Number.isInteger(number) && number > 0 ? repo.issues[number - 1] : undefined;
    if (issue === undefined) throw notFound(documentationUrl);
    return issue;
  }

  createIssue(repo: SimRepo, actor: SimUser, body: unknown, kind: 'issue' | 'pull_request' = 'issue'): SimIssue {
    const input = this.objectBody(body);
    const errors: ValidationErrorEntry[] = [];
    const title = this.title(input['title'], true, errors);
    const text = this.text(input['body'], 'Issue', 'body', errors);
    const labels = this.labelNames(input['labels'], errors);
    const assignees = this.assignees(repo, input, errors);
    if (errors.length > 0 || title === undefined) throw validationFailed(errors, DOCS.createIssue);
    const now = this.stamp();
    const issue: SimIssue = {
      id: this.nextIds.issue++,
      number: repo.issues.length + 1,
      title,
      body: text ?? null,
      state: 'open',
      state_reason: null,
      labels: this.ensureLabels(repo, labels ?? []),
      assignees: assignees ?? [],
      user: actor,
      comments: [],
      created_at: now,
      updated_at: now,
      closed_at: null,
      closed_by: null,
      pull_request: kind === 'pull_request',
    };
    repo.issues.push(issue);
    return issue;
  }

  /** PATCH semantics: only given fields change; `updated_at` moves only when something did. */
  updateIssue(repo: SimRepo, issue: SimIssue, actor: SimUser, body: unknown): SimIssue {
    const input = this.objectBody(body);
    const errors: ValidationErrorEntry[] = [];
    const title = input['title'] === null ? undefined : this.title(input['title'], false, errors);
    const text = this.text(input['body'], 'Issue', 'body', errors);
    const labels = this.labelNames(input['labels'], errors);
    const assignees = this.assignees(repo, input, errors);
    const state = input['state'];
    if (state !== undefined && state !== 'open' && state !== 'closed') {
      errors.push({ resource: 'Issue', field: 'state', code: 'invalid', value: state });
    }
    const reason = input['state_reason'];
    const reasons = ['completed', 'not_planned', 'reopened', 'duplicate', null];
    if (reason !== undefined && !reasons.includes(reason as string | null)) {
      errors.push({ resource: 'Issue', field: 'state_reason', code: 'invalid', value: reason });
    }
    if (errors.length > 0) throw validationFailed(errors, DOCS.updateIssue);

    const before = JSON.stringify(this.snapshot(issue));
    const now = this.stamp();
    if (title !== undefined) issue.title = title;
    if (text !== undefined) issue.body = text;
    if (labels !== undefined) issue.labels = this.ensureLabels(repo, labels);
    if (assignees !== undefined) issue.assignees = assignees;
    if (state === 'closed' && issue.state === 'open') {
      issue.state = 'closed';
      issue.closed_at = now;
      issue.closed_by = actor;
      issue.state_reason = (reason as SimIssue['state_reason'] | undefined) ?? 'completed';
    } else if (state === 'open' && issue.state === 'closed') {
      issue.state = 'open';
      issue.closed_at = null;
      issue.closed_by = null;
      issue.state_reason = (reason as SimIssue['state_reason'] | undefined) ?? 'reopened';
    } else if (reason !== undefined) {
      issue.state_reason = reason as SimIssue['state_reason'];
    }
    if (JSON.stringify(this.snapshot(issue)) !== before) issue.updated_at = now;
    return issue;
  }

  /** A new comment also moves the issue's `updated_at`, as on GitHub. */
  addComment(issue: SimIssue, actor: SimUser, body: unknown): SimComment {
    const input = this.objectBody(body);
    const text = input['body'];
    if (typeof text !== 'string' || text.trim() === '') {
      const code = text === undefined || text === null || text === '' ? 'missing_field' : 'invalid';
      throw validationFailed([{ resource: 'IssueComment', field: 'body', code }], DOCS.createComment);
    }
    const now = this.stamp();
    const comment: SimComment = { id: this.nextIds.comment++, body: text, user: actor, created_at: now, updated_at: now };
    issue.comments.push(comment);
    issue.updated_at = now;
    return comment;
  }

  /** Filters and sorts a repository's issues (pull requests included, as the REST list does). */
  list(repo: SimRepo, query: ListQuery): SimIssue[] {
    const wanted = query.labels.map((label) => label.toLowerCase());
    const items = repo.issues.filter(
      (issue) =>
        (query.state === 'all' || issue.state === query.state) &&
        (query.since === undefined || issue.updated_at.getTime() >= query.since.getTime()) &&
        (query.creator === undefined || issue.user.login.toLowerCase() === query.creator.toLowerCase()) &&
        wanted.every((label) => issue.labels.some((name) => name.toLowerCase() === label)),
    );
    const key = (issue: SimIssue) =>
      query.sort === 'created'
        ? issue.created_at.getTime()
        : query.sort === 'updated'
          ? issue.updated_at.getTime()
          : issue.comments.length;
    const sign = query.direction === 'asc' ? 1 : -1;
    // Equal keys keep a stable order by number, so pages never overlap or skip.
    return items.sort((a, b) => sign * (key(a) - key(b) || a.number - b.number));
  }

  private objectBody(body: unknown): Body {
    if (body === undefined || body === null) return {};
    if (!isObject(body)) {
      throw problemsParsingJson();
    }
    return body;
  }

  /** GitHub takes a string or an integer title; a missing or blank one is `missing_field`. */
  private title(value: unknown, required: boolean, errors: ValidationErrorEntry[]): string | undefined {
    if (value === undefined && !required) return undefined;
    if (value === undefined || value === null || (typeof value === 'string' && value.trim() === '')) {
      errors.push({ resource: 'Issue', field: 'title', code: 'missing_field' });
      return undefined;
    }
    if (typeof value === 'number' && Number.isInteger(value)) return String(value);
    if (typeof value !== 'string') {
      errors.push({ resource: 'Issue', field: 'title', code: 'invalid', value });
      return undefined;
    }
    return value;
  }

  private text(value: unknown, resource: string, field: string, errors: ValidationErrorEntry[]): string | null | undefined {
    if (value === undefined || value === null || typeof value === 'string') return value;
    errors.push({ resource, field, code: 'invalid', value });
    return undefined;
  }

  /** Labels may be names or `{name}` objects; unknown names are created (GitHub does so for users with push access). */
  private labelNames(value: unknown, errors: ValidationErrorEntry[]): string[] | undefined {
    if (value === undefined || value === null) return value === null ? [] : undefined;
    if (!Array.isArray(value)) {
      errors.push({ resource: 'Issue', field: 'labels', code: 'invalid', value });
      return undefined;
    }
    const names: string[] = [];
    for (const entry of value) {
      const name = typeof entry === 'string' ? entry : isObject(entry) && typeof entry['name'] === 'string' ? entry['name'] : undefined;
      if (name === undefined || name.trim() === '' || name.length > 50) {
        errors.push({ resource: 'Label', field: 'name', code: 'invalid', value: entry });
        continue;
      }
      if (!names.some((known) => known.toLowerCase() === name.toLowerCase())) names.push(name);
    }
    return names;
  }

  /**
   * `assignees` (and the deprecated single `assignee`) must be users who can be assigned; GitHub answers
   * 422 `{resource: "Issue", field: "assignees", code: "invalid", value: "<login>"}` otherwise (seen in
   * https://github.com/JasonEtco/create-an-issue/issues/41 and microsoft/vscode-pull-request-github#1868).
   */
  private assignees(repo: SimRepo, input: Body, errors: ValidationErrorEntry[]): SimUser[] | undefined {
    const list = input['assignees'];
    const single = input['assignee'];
    if (list === undefined && single === undefined) return undefined;
    const logins: unknown[] = [];
    if (list !== undefined && list !== null) {
      if (!Array.isArray(list)) {
        errors.push({ resource: 'Issue', field: 'assignees', code: 'invalid', value: list });
        return undefined;
      }
      logins.push(...(list as unknown[]));
    }
    if (typeof single === 'string') logins.push(single);
    const users: SimUser[] = [];
    for (const login of logins) {
      if (typeof login !== 'string' || !repo.assignable.has(login.toLowerCase())) {
        errors.push({ resource: 'Issue', field: 'assignees', code: 'invalid', value: login });
        continue;
      }
      const user = this.user(login);
      if (!users.includes(user)) users.push(user);
    }
    if (users.length > 10) errors.push({ resource: 'Issue', field: 'assignees', code: 'invalid', message: 'at most 10 assignees' });
    return users;
  }

  private ensureLabels(repo: SimRepo, names: readonly string[]): string[] {
    return names.map((name) => {
      const key = name.toLowerCase();
      let label = repo.labels.get(key);
      if (label === undefined) {
        label = { id: this.nextIds.label++, name, color: DEFAULT_LABEL_COLOR, description: null, default: false };
        repo.labels.set(key, label);
      }
      return label.name;
    });
  }

  private snapshot(issue: SimIssue) {
    return {
      title: issue.title,
      body: issue.body,
      state: issue.state,
      state_reason: issue.state_reason,
      labels: issue.labels,
      assignees: issue.assignees.map((user) => user.login),
      closed_at: issue.closed_at === null ? null : isoSeconds(issue.closed_at),
    };
  }
}
