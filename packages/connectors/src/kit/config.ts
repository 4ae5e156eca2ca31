import type { Connector, ConnectionSettings } from './types.js';

/**
 * Connections from the environment. Pure: the environment and the connectors are arguments.
 *
 * Every provider has a default connection named after it, configured when its token is set:
 * `<PROVIDER>_TOKEN` (secret), `<PROVIDER>_API_URL` (default: the provider's public API), and optionally
 * `<PROVIDER>_MAX_CONNECTIONS`, `<PROVIDER>_MAX_CONCURRENCY`, `<PROVIDER>_SETTLE_MS` — e.g. `GITHUB_TOKEN`,
 * `GITHUB_API_URL`. More connections are listed in `CONNECTIONS` (`github-acme,ghe`), each with
 * `CONNECTION_<NAME>_PROVIDER` and the same variables under `CONNECTION_<NAME>_` (`CONNECTION_GITHUB_ACME_TOKEN`),
 * so two GitHub organisations with their own tokens, or a GitHub Enterprise base URL, sit side by side.
 */
export interface ConnectionConfig extends ConnectionSettings {
  /** As commands name it in `data.connection`. */
  readonly name: string;
  readonly connector: Connector;
  /** Sockets kept open; default from the policy. */
  readonly maxConnections?: number;
  /** Requests in flight at once; default from the policy. */
  readonly maxConcurrency?: number;
  /** Overrides the connector's settle time (a provider whose requests end sooner or later than documented). */
  readonly settleMs?: number;
}

export interface ConnectionsProblem {
  readonly variable: string;
  readonly message: string;
}

export class ConnectionsConfigError extends Error {
  readonly problems: readonly ConnectionsProblem[];

  constructor(problems: readonly ConnectionsProblem[]) {
    super(problems.map((problem) => `${problem.variable}: ${problem.message}`).join('; '));
    this.name = 'ConnectionsConfigError';
    this.problems = problems;
  }
}

type Env = Readonly<Record<string, string | undefined>>;

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

/** `github-acme` → `GITHUB_ACME`. */
function variablePart(name: string): string {
  return name.toUpperCase().replace(/-/g, '_');
}

function readOne(
  env: Env,
  prefix: string,
  name: string,
  connector: Connector,
  problems: ConnectionsProblem[],
): ConnectionConfig | undefined {
  const value = (suffix: string) => {
    const raw = env[`${prefix}${suffix}`];
    return raw === undefined || raw === '' ? undefined : raw;
  };
  const token = value('TOKEN');
  if (token === undefined) {
    problems.push({ variable: `${prefix}TOKEN`, message: `required for connection ${name}` });
    return undefined;
  }
  const baseUrl = value('API_URL') ?? connector.defaultBaseUrl;
  if (!URL.canParse(baseUrl) || !/^https?:$/.test(new URL(baseUrl).protocol)) {
    problems.push({ variable: `${prefix}API_URL`, message: 'expected an http(s) URL' });
    return undefined;
  }
  const numbers: Record<'maxConnections' | 'maxConcurrency' | 'settleMs', number | undefined> = {
    maxConnections: undefined,
    maxConcurrency: undefined,
    settleMs: undefined,
  };
  for (const [key, suffix, min, max] of [
    ['maxConnections', 'MAX_CONNECTIONS', 1, 1024],
    ['maxConcurrency', 'MAX_CONCURRENCY', 1, 1024],
    ['settleMs', 'SETTLE_MS', 0, 600000],
  ] as const) {
    const raw = value(suffix);
    if (raw === undefined) continue;
    const parsed = Number(raw);
    if (!/^\d+$/.test(raw) || parsed < min || parsed > max) {
      problems.push({ variable: `${prefix}${suffix}`, message: `expected a whole number from ${min} to ${max}` });
      continue;
    }
    numbers[key] = parsed;
  }
  const config: ConnectionConfig = {
    name,
    connector,
    baseUrl,
    token,
    ...(numbers.maxConnections === undefined ? {} : { maxConnections: numbers.maxConnections }),
    ...(numbers.maxConcurrency === undefined ? {} : { maxConcurrency: numbers.maxConcurrency }),
    ...(numbers.settleMs === undefined ? {} : { settleMs: numbers.settleMs }),
  };
  // However a connection gets logged or serialised, its secret stays out: only what identifies it is shown.
  Object.defineProperty(config, 'toJSON', {
    enumerable: false,
    value: () => ({ name, provider: connector.provider, baseUrl, token: '[redacted]', ...numbers }),
  });
  return config;
}

/** The variables a connection may be configured with, for a config's allow-list and the docs. */
export function connectionVariables(connectors: readonly Connector[], env: Env): string[] {
  const suffixes = ['TOKEN', 'API_URL', 'MAX_CONNECTIONS', 'MAX_CONCURRENCY', 'SETTLE_MS'];
  const prefixes = connectors.map((connector) => `${connector.provider.toUpperCase()}_`);
  for (const name of (env['CONNECTIONS'] ?? '').split(',').map((part) => part.trim()).filter(Boolean)) {
    prefixes.push(`CONNECTION_${variablePart(name)}_`);
  }
  return ['CONNECTIONS', ...prefixes.flatMap((prefix) => suffixes.map((suffix) => `${prefix}${suffix}`))];
}

/** Reads every connection; throws ConnectionsConfigError naming each bad or missing variable at once. */
export function loadConnections(env: Env, connectors: readonly Connector[]): ConnectionConfig[] {
  const problems: ConnectionsProblem[] = [];
  const connections: ConnectionConfig[] = [];
  const byProvider = new Map(connectors.map((connector) => [connector.provider, connector]));
  for (const connector of connectors) {
    const prefix = `${connector.provider.toUpperCase()}_`;
    const anySet = ['TOKEN', 'API_URL'].some((suffix) => (env[`${prefix}${suffix}`] ?? '') !== '');
    if (!anySet) continue;
    const connection = readOne(env, prefix, connector.provider, connector, problems);
    if (connection) connections.push(connection);
  }
  const listed = (env['CONNECTIONS'] ?? '').split(',').map((part) => part.trim()).filter(Boolean);
  for (const name of listed) {
    if (!NAME.test(name)) {
      problems.push({ variable: 'CONNECTIONS', message: `"${name}": connection names are lower-case letters, digits and dashes` });
      continue;
    }
    if (connections.some((connection) => connection.name === name)) {
      problems.push({ variable: 'CONNECTIONS', message: `"${name}" is configured twice` });
      continue;
    }
    const prefix = `CONNECTION_${variablePart(name)}_`;
    const provider = env[`${prefix}PROVIDER`];
    const connector = provider === undefined ? undefined : byProvider.get(provider);
    if (connector === undefined) {
      problems.push({
        variable: `${prefix}PROVIDER`,
        message: provider === undefined ? `required for connection ${name}; one of ${[...byProvider.keys()].join(', ')}` : `unknown provider "${provider}"; one of ${[...byProvider.keys()].join(', ')}`,
      });
      continue;
    }
    const connection = readOne(env, prefix, name, connector, problems);
    if (connection) connections.push(connection);
  }
  if (problems.length > 0) throw new ConnectionsConfigError(problems);
  return connections;
}
