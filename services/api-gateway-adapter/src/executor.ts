import { entityKey, microsFromDate, sourceVersions, type EntityVersion, type GithubIssue } from '@switchyard/events';
import type { AdapterError } from './errors.js';
import type { CallHooks, GithubConnection } from './github/connection.js';
import { issueRequest, parseIssueAnswer, type IssueCommand } from './github/issues.js';
import { UpstreamError } from './github/upstream-errors.js';

/** The entity state a command left behind, as the provider reported it. */
export interface ExecutedEntity {
  readonly key: string;
  readonly source: 'github';
  readonly entityType: 'issue';
  readonly entityId: string;
  readonly version: EntityVersion;
  readonly state: GithubIssue;
  /** When the provider's answer arrived. */
  readonly observedAt: Date;
}

export type ExecutionOutcome =
  | { readonly ok: true; readonly entity: ExecutedEntity; readonly attempts: number }
  | { readonly ok: false; readonly error: AdapterError; readonly attempts: number };

/** Carries out commands against the configured connections. */
export class CommandExecutor {
  private readonly connections: ReadonlyMap<string, GithubConnection>;
  private readonly now: () => Date;

  constructor(connections: readonly GithubConnection[], now: () => Date = () => new Date()) {
    this.connections = new Map(connections.map((connection) => [connection.name, connection]));
    this.now = now;
  }

  hasConnection(name: string): boolean {
    return this.connections.has(name);
  }

  connectionNames(): string[] {
    return [...this.connections.keys()];
  }

  /**
   * Sends the command's request (with the connection's retries) and turns the answer into the entity's new state
   * and version. Resolves with a failure for anything the provider said or did; rejects only with what
   * `hooks.beforeRetry` throws, or when the connection does not exist (a caller bug: check `hasConnection`).
   */
  async execute(command: IssueCommand, connectionName: string, hooks: CallHooks = {}): Promise<ExecutionOutcome> {
    const connection = this.connections.get(connectionName);
    if (connection === undefined) throw new Error(`no connection named ${connectionName}`);
    const outcome = await connection.call(issueRequest(command), hooks);
    if (!outcome.ok) return outcome;
    const observedAt = this.now();
    try {
      const { issue, entityId } = parseIssueAnswer(outcome.answer.body, command);
      return {
        ok: true,
        attempts: outcome.attempts,
        entity: {
          key: entityKey('github', 'issue', entityId),
          source: 'github',
          entityType: 'issue',
          entityId,
          version: sourceVersions.githubIssue(issue, microsFromDate(observedAt)),
          state: issue,
          observedAt,
        },
      };
    } catch (error) {
      if (error instanceof UpstreamError) return { ok: false, error, attempts: outcome.attempts };
      throw error;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.connections.values()].map((connection) => connection.close()));
  }
}
