import { ApiKeyScope, commandCatalog, compileTypes, isCommandType, patternCovers, typePatternProblem } from '@switchyard/events';

/**
 * What a key may do, from its scopes (the grammar is ApiKeyScope in packages/events/src/keys.ts). Type globs are
 * the stream's type patterns (packages/events/src/type-patterns.ts): `*` is one segment, a trailing `**` any rest.
 * - `admin`: everything, including what only admin may do — commands the sync worker carries out (projection
 *   rebuilds), key management, projection positions.
 * - `commands:send:<pattern>`: send commands whose type matches (`github.issue.*`, `github.**`, `**`). A pattern
 *   never grants an admin command: `commands:send:**` sends every provider command, not a rebuild.
 * - `commands:read`: the status of the key's own commands; `commands:read:all`: of every command.
 * - `stream:<pattern>`: subscribe to events whose type matches (`github.issue.*`, `switchyard.command.*`).
 * - `health:read`: the health monitor's view of each API.
 */
export type Scope = string;

/** What a route requires: one scope, or for a family (`commands:send`, `stream`) at least one scope of it. */
export type Requirement = 'admin' | 'commands:send' | 'commands:read' | 'stream' | 'health:read';

/** Command types only `admin` may send: those the sync worker carries out, and every `switchyard.` type. */
function isAdminCommand(type: string): boolean {
  return type.startsWith('switchyard.') || (isCommandType(type) && commandCatalog[type].handledBy === 'sync-worker');
}

/** Why a scope is not valid, or undefined when it is. */
export function scopeProblem(scope: string): string | undefined {
  const parsed = ApiKeyScope.safeParse(scope);
  if (!parsed.success) return parsed.error.issues[0]?.message ?? 'invalid scope';
  const pattern = scope.startsWith('commands:send:') ? scope.slice(14) : scope.startsWith('stream:') ? scope.slice(7) : undefined;
  const problem = pattern === undefined ? undefined : typePatternProblem(pattern);
  return problem === undefined ? undefined : `${scope}: ${problem}`;
}

export class Grants {
  readonly scopes: readonly Scope[];
  readonly admin: boolean;
  private readonly sendPatterns: string[] = [];
  private readonly streamPatterns: string[] = [];
  private readonly send: (type: string) => boolean;
  private readonly stream: (type: string) => boolean;
  private readonly readOwn: boolean;
  private readonly readAll: boolean;
  private readonly health: boolean;

  constructor(scopes: readonly Scope[]) {
    this.scopes = scopes;
    for (const scope of scopes) {
      const problem = scopeProblem(scope);
      if (problem !== undefined) throw new Error(`not a scope: ${problem}`);
      if (scope.startsWith('commands:send:')) this.sendPatterns.push(scope.slice(14));
      if (scope.startsWith('stream:')) this.streamPatterns.push(scope.slice(7));
    }
    this.send = compileTypes(this.sendPatterns);
    this.stream = compileTypes(this.streamPatterns);
    this.admin = scopes.includes('admin');
    this.readAll = this.admin || scopes.includes('commands:read:all');
    this.readOwn = this.readAll || scopes.includes('commands:read');
    this.health = this.admin || scopes.includes('health:read');
  }

  /** Whether a route's requirement is met (for a family: whether any scope of it is held). */
  meets(requirement: Requirement): boolean {
    switch (requirement) {
      case 'admin':
        return this.admin;
      case 'commands:send':
        return this.admin || this.sendPatterns.length > 0;
      case 'commands:read':
        return this.readOwn;
      case 'stream':
        return this.admin || this.streamPatterns.length > 0;
      case 'health:read':
        return this.health;
      default: {
        const unreachable: never = requirement;
        throw new Error(`unknown requirement ${String(unreachable)}`);
      }
    }
  }

  /** The scope sending this command type needs, or undefined when the key has it. */
  missingToSend(type: string): Scope | undefined {
    if (this.admin) return undefined;
    if (isAdminCommand(type)) return 'admin';
    return this.send(type) ? undefined : `commands:send:${type}`;
  }

  /** Whether the key may read the status of a command whose Auth Context names `owner` (undefined: none). */
  mayRead(owner: string | undefined, self: string): boolean {
    return this.readAll || (this.readOwn && owner === self);
  }

  /** Whether events of this type may be streamed to the key. */
  mayStream(type: string): boolean {
    return this.admin || this.stream(type);
  }

  /** Whether every type a subscription's `types` entry can match is one the key may stream. */
  mayStreamPattern(pattern: string): boolean {
    return this.admin || this.streamPatterns.some((scope) => patternCovers(scope, pattern));
  }
}
