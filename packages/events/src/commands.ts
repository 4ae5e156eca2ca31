import { z } from 'zod';
import { envelopeSchema } from './envelope.js';
import { entityKey } from './entities.js';

/**
 * Commands are imperative (`github.issue.create`); the events they cause are past tense. A command is a CloudEvent
 * on the commands topic whose `type` is the command type, whose `id` is the command id, and whose subject is the
 * command's target (the entity it acts on, or its parent for creates). Its Kafka key is what it must stay in order
 * with (`orderedBy`): commands on one entity share the entity's key and run in order; a create acts on nothing that
 * exists yet, so it is keyed by its own id and independent creates in one repository run side by side.
 */

/** The service that carries out a command type; every other service ignores it. */
export type CommandHandler = 'api-gateway-adapter' | 'sync-worker';

interface CommandSpec<I extends z.ZodType> {
  readonly handledBy: CommandHandler;
  readonly input: I;
  /** The entity key the command acts on (its subject). */
  readonly target: (input: z.output<I>) => string;
  /** Its Kafka key: the target, so commands on one entity run in order; or its own id, for creates. */
  readonly orderedBy: 'target' | 'command';
  readonly description: string;
}

function defineCommand<I extends z.ZodType>(spec: CommandSpec<I>): CommandSpec<I> {
  return spec;
}

const GithubName = z.string().regex(/^[A-Za-z0-9_.-]{1,100}$/, 'expected a GitHub owner or repository name');
const GithubLabels = z.array(z.string().min(1).max(50)).max(100);
const GithubLogins = z.array(z.string().min(1).max(39)).max(10);

export const GithubIssueCreateInput = z.strictObject({
  owner: GithubName,
  repo: GithubName,
  title: z.string().min(1).max(256),
  body: z.string().max(65536).optional(),
  labels: GithubLabels.optional(),
  assignees: GithubLogins.optional(),
});

export const GithubIssueUpdateInput = z
  .strictObject({
    owner: GithubName,
    repo: GithubName,
    number: z.number().int().positive(),
    title: z.string().min(1).max(256).optional(),
    body: z.string().max(65536).optional(),
    state: z.enum(['open', 'closed']).optional(),
    state_reason: z.enum(['completed', 'not_planned', 'reopened']).optional(),
    labels: GithubLabels.optional(),
    assignees: GithubLogins.optional(),
  })
  .refine((input) => Object.keys(input).some((key) => !['owner', 'repo', 'number'].includes(key)), {
    message: 'nothing to change: give at least one of title, body, state, state_reason, labels, assignees',
  });

export const ProjectionName = z.enum(['entities', 'command_log', 'api_health']);
export type ProjectionName = z.infer<typeof ProjectionName>;

export const ProjectionRebuildInput = z.strictObject({ projection: ProjectionName });

export const commandCatalog = {
  'github.issue.create': defineCommand({
    handledBy: 'api-gateway-adapter',
    input: GithubIssueCreateInput,
    target: (input) => entityKey('github', 'repository', `${input.owner}/${input.repo}`),
    orderedBy: 'command',
    description: 'Open an issue (POST /repos/{owner}/{repo}/issues).',
  }),
  'github.issue.update': defineCommand({
    handledBy: 'api-gateway-adapter',
    input: GithubIssueUpdateInput,
    target: (input) => entityKey('github', 'issue', `${input.owner}/${input.repo}#${input.number}`),
    orderedBy: 'target',
    description: 'Edit, close or reopen an issue (PATCH /repos/{owner}/{repo}/issues/{number}).',
  }),
  'switchyard.projection.rebuild': defineCommand({
    handledBy: 'sync-worker',
    input: ProjectionRebuildInput,
    target: (input) => entityKey('switchyard', 'projection', input.projection),
    orderedBy: 'target',
    description: 'Rebuild a Postgres projection from offset 0 into a shadow table and swap it in.',
  }),
} as const;
export type CommandCatalog = typeof commandCatalog;
export type CommandType = keyof CommandCatalog;
export type CommandInput<T extends CommandType> = z.output<CommandCatalog[T]['input']>;

export function isCommandType(type: string): type is CommandType {
  return Object.hasOwn(commandCatalog, type);
}

/** A command's Kafka key: its target when it must stay in order with others on that entity, else its own id. */
export function commandKey(command: { readonly id: string; readonly type: string; readonly subject?: string | undefined }): string {
  const ordered = isCommandType(command.type) && commandCatalog[command.type].orderedBy === 'target';
  return ordered ? (command.subject ?? command.id) : command.id;
}

/**
 * What every command carries besides its input. `connection` names the configured credentials and base URL to
 * use (e.g. `github`); `idempotencyKey` is sent to providers that honour one and defaults to the command id.
 */
function commandData<I extends z.ZodType>(input: I) {
  return z.object({
    connection: z.string().min(1).max(100),
    idempotencyKey: z.string().min(1).max(255),
    input,
  });
}

/** Event type → envelope schema for every command in the catalog (the same input schemas, typed precisely). */
export const commandSchemas = {
  'github.issue.create': envelopeSchema('github.issue.create', commandData(GithubIssueCreateInput)),
  'github.issue.update': envelopeSchema('github.issue.update', commandData(GithubIssueUpdateInput)),
  'switchyard.projection.rebuild': envelopeSchema('switchyard.projection.rebuild', commandData(ProjectionRebuildInput)),
} as const satisfies Record<CommandType, unknown>;
