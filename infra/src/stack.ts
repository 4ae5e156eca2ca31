import { randomBytes } from 'node:crypto';
import { DEFAULT_TOPIC_PREFIX } from '@switchyard/events';
import { DEFAULT_DATABASE_URL } from './postgres.js';

/**
 * The local stack, declared once: every process `npm start` runs, its port and its environment, and where Kafka
 * and Postgres are. The launcher (launch.ts), the end-to-end test, the latency benchmark and the docker-compose
 * check (test/compose.unit.test.ts) all read this, so they cannot drift apart.
 *
 * `loadLocalStack(env)` is what `npm start` runs. It reads, all optional:
 *
 * | Variable | Default | |
 * | --- | --- | --- |
 * | `KAFKA_BROKERS` | (unset) | Use this cluster; no local broker is started. Unset: the local broker on 127.0.0.1:9092. |
 * | `SWITCHYARD_KAFKA_PORT` | `9092` | Port of the local broker (its first node); another port is another local cluster. |
 * | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/switchyard` | Created when missing. |
 * | `TOPIC_PREFIX` | `switchyard.` | Topic and consumer-group prefix. |
 * | `LOG_LEVEL` | `info` | Of every process. |
 * | `SWITCHYARD_<NAME>_PORT` | see `DEFAULT_PORTS` | e.g. `SWITCHYARD_API_GATEWAY_ADAPTER_PORT=9080`, `SWITCHYARD_GITHUB_SIMULATOR_PORT`. |
 */

export const SERVICE_NAMES = ['api-gateway-adapter', 'sync-worker', 'health-monitor', 'ws-fanout'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];
export const SIMULATOR_NAME = 'github-simulator';
export type ComponentName = ServiceName | typeof SIMULATOR_NAME;
export const COMPONENT_NAMES: readonly ComponentName[] = [SIMULATOR_NAME, ...SERVICE_NAMES];

export const DEFAULT_PORTS: Readonly<Record<ComponentName, number>> = {
  'api-gateway-adapter': 8080,
  'sync-worker': 8081,
  'health-monitor': 8082,
  'ws-fanout': 8083,
  'github-simulator': 4010,
};

/** Where `npm start` runs the local Kafka broker when KAFKA_BROKERS is not set (its first node, with `--brokers 3`). */
export const LOCAL_KAFKA_PORT = 9092;

/** Moves the local broker of `npm start`, `npm test` and `npm run bench` to another port. */
export const KAFKA_PORT_VARIABLE = 'SWITCHYARD_KAFKA_PORT';

/**
 * The local cluster `npm start` runs: `local` (one node), or `local-3` with `--brokers 3` (on 9092, 9094, 9096).
 * On another port it is another cluster, with its own data: `local-9192`, `local-3-9192`.
 */
export function localKafkaName(nodes: number, port = LOCAL_KAFKA_PORT): string {
  const base = nodes === 1 ? 'local' : `local-${nodes}`;
  return port === LOCAL_KAFKA_PORT ? base : `${base}-${port}`;
}

/** Bootstrap servers of the local cluster of `nodes` nodes: node i listens on `port` + 2(i-1). */
export function localKafkaBrokers(nodes: number, port = LOCAL_KAFKA_PORT): string {
  return Array.from({ length: nodes }, (_, index) => `127.0.0.1:${port + 2 * index}`).join(',');
}

function parsePort(raw: string): number | undefined {
  const port = Number(raw);
  return /^\d+$/.test(raw) && port >= 1 && port <= 65535 ? port : undefined;
}

/** The local broker's port from SWITCHYARD_KAFKA_PORT (default 9092); throws StackConfigError naming it. */
export function localKafkaPort(env: Readonly<Record<string, string | undefined>>): number {
  const raw = env[KAFKA_PORT_VARIABLE];
  if (raw === undefined || raw === '') return LOCAL_KAFKA_PORT;
  const port = parsePort(raw);
  // Three nodes take this port and the five after it.
  if (port === undefined || port > 65530) {
    throw new StackConfigError([{ variable: KAFKA_PORT_VARIABLE, message: `expected a port 1-65530, got "${raw}"` }]);
  }
  return port;
}
/** The repository the simulator always has; the launcher's example command uses it. */
export const EXAMPLE_REPOSITORY = { owner: 'acme', repo: 'widgets' } as const;

export interface StackComponent {
  readonly name: ComponentName;
  /** The workspace folder of its package, relative to the repository root. */
  readonly packageDir: string;
  /** Its built entry point, relative to `packageDir`. */
  readonly entry: string;
  readonly port: number;
  /** A GET here answers 200 once the component can do its work. */
  readonly readyPath: string;
  /** Its whole configuration: nothing else is passed to it. */
  readonly env: Readonly<Record<string, string>>;
}

export interface Stack {
  readonly kafkaBrokers: string;
  readonly databaseUrl: string;
  readonly topicPrefix: string;
  readonly simulator: StackComponent;
  /** In SERVICE_NAMES order. */
  readonly services: readonly StackComponent[];
}

export interface StackOptions {
  readonly kafkaBrokers: string;
  readonly databaseUrl: string;
  readonly topicPrefix: string;
  /** Accepted by the simulator and sent by the adapter. Generate one per run (`generateGithubToken`). */
  readonly githubToken: string;
  readonly ports: Readonly<Record<ComponentName, number>>;
  /** The address every process listens on: loopback on a laptop, every interface in a container. */
  readonly bindHost: string;
  /** The host name by which services reach the simulator: 127.0.0.1 locally, `github-simulator` in compose. */
  readonly simulatorHost: string;
  readonly logLevel: string;
  /** More variables for a component, for tests and benchmarks that turn a knob. `npm start` sets none. */
  readonly extraEnv?: Partial<Record<ComponentName, Readonly<Record<string, string>>>>;
}

function component(
  options: StackOptions,
  name: ComponentName,
  packageDir: string,
  entry: string,
  readyPath: string,
  env: Record<string, string>,
): StackComponent {
  return { name, packageDir, entry, port: options.ports[name], readyPath, env: { ...env, ...options.extraEnv?.[name] } };
}

/** The stack for the given endpoints: what runs, on which port, with which environment. Pure. */
export function defineStack(options: StackOptions): Stack {
  const simulatorUrl = `http://${options.simulatorHost}:${options.ports[SIMULATOR_NAME]}`;
  const common = (name: ServiceName) => ({
    PORT: String(options.ports[name]),
    HOST: options.bindHost,
    LOG_LEVEL: options.logLevel,
    KAFKA_BROKERS: options.kafkaBrokers,
    TOPIC_PREFIX: options.topicPrefix,
  });
  const service = (name: ServiceName, env: Record<string, string>) =>
    component(options, name, `services/${name}`, 'dist/main.js', '/readyz', { ...common(name), ...env });
  return {
    kafkaBrokers: options.kafkaBrokers,
    databaseUrl: options.databaseUrl,
    topicPrefix: options.topicPrefix,
    // GitHub's own health answer; the simulator has no /readyz.
    simulator: component(options, SIMULATOR_NAME, 'packages/simulators', 'dist/cli.js', '/zen', {
      GITHUB_SIM_PORT: String(options.ports[SIMULATOR_NAME]),
      GITHUB_SIM_HOST: options.bindHost,
      GITHUB_SIM_TOKEN: options.githubToken,
      LOG_LEVEL: options.logLevel,
    }),
    services: [
      service('api-gateway-adapter', { GITHUB_API_URL: simulatorUrl, GITHUB_TOKEN: options.githubToken }),
      service('sync-worker', { DATABASE_URL: options.databaseUrl }),
      service('health-monitor', { HEALTH_TARGETS: `github=${simulatorUrl}/zen` }),
      service('ws-fanout', {}),
    ],
  };
}

/** Simulator first, then the services. */
export function stackComponents(stack: Stack): StackComponent[] {
  return [stack.simulator, ...stack.services];
}

export function findComponent(stack: Stack, name: ComponentName): StackComponent {
  const found = stackComponents(stack).find((candidate) => candidate.name === name);
  if (!found) throw new Error(`the stack has no component ${name}`);
  return found;
}

/** The URL a client on this machine uses to reach a component. */
export function localUrl(component: StackComponent, scheme: 'http' | 'ws' = 'http'): string {
  return `${scheme}://127.0.0.1:${component.port}`;
}

/** A token in GitHub's personal-access-token shape; the simulator accepts exactly this one for the run. */
export function generateGithubToken(): string {
  return `ghp_${randomBytes(18).toString('hex')}`;
}

/** `api-gateway-adapter` → `SWITCHYARD_API_GATEWAY_ADAPTER_PORT`. */
export function portVariable(name: ComponentName): string {
  return `SWITCHYARD_${name.toUpperCase().replace(/-/g, '_')}_PORT`;
}

export interface LocalStack {
  readonly stack: Stack;
  /** True when KAFKA_BROKERS is unset: the launcher runs (or reuses) the local broker. */
  readonly localBroker: boolean;
  /** How many nodes the local cluster has (1, or 3 with `--brokers 3`); meaningless with KAFKA_BROKERS. */
  readonly localNodes: number;
  /** The local cluster's first port (SWITCHYARD_KAFKA_PORT); meaningless with KAFKA_BROKERS. */
  readonly localKafkaPort: number;
}

/** Thrown by `loadLocalStack` for bad settings; the message names every variable at fault. */
export class StackConfigError extends Error {
  readonly problems: readonly { variable: string; message: string }[];

  constructor(problems: readonly { variable: string; message: string }[]) {
    super(`invalid configuration:\n  ${problems.map((problem) => `${problem.variable}: ${problem.message}`).join('\n  ')}`);
    this.name = 'StackConfigError';
    this.problems = problems;
  }

  get variables(): readonly string[] {
    return this.problems.map((problem) => problem.variable);
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * The stack `npm start` runs, from the launcher's environment (the table at the top of this file). Pure: the
 * environment and the token are arguments. Empty variables count as unset.
 */
export function loadLocalStack(
  env: Readonly<Record<string, string | undefined>>,
  githubToken: string,
  options: { localNodes?: number } = {},
): LocalStack {
  const localNodes = options.localNodes ?? 1;
  const value = (name: string) => (env[name] === undefined || env[name] === '' ? undefined : env[name]);
  const problems: { variable: string; message: string }[] = [];

  const ports = { ...DEFAULT_PORTS };
  for (const name of COMPONENT_NAMES) {
    const variable = portVariable(name);
    const raw = value(variable);
    if (raw === undefined) continue;
    const port = parsePort(raw);
    if (port === undefined) problems.push({ variable, message: `expected a port 1-65535, got "${raw}"` });
    else ports[name] = port;
  }
  const byPort = new Map<number, ComponentName[]>();
  for (const name of COMPONENT_NAMES) byPort.set(ports[name], [...(byPort.get(ports[name]) ?? []), name]);
  for (const [port, names] of byPort) {
    if (names.length < 2) continue;
    // Blame the variable the user set, not the default it collides with.
    const chosen = names.find((name) => value(portVariable(name)) !== undefined) ?? names[1]!;
    problems.push({ variable: portVariable(chosen), message: `port ${port} would serve both ${names.join(' and ')}` });
  }

  const databaseUrl = value('DATABASE_URL') ?? DEFAULT_DATABASE_URL;
  if (!URL.canParse(databaseUrl) || !/^postgres(ql)?:$/.test(new URL(databaseUrl).protocol) || new URL(databaseUrl).pathname.length < 2) {
    problems.push({ variable: 'DATABASE_URL', message: 'expected postgres://user@host:port/database' });
  }
  const kafkaBrokers = value('KAFKA_BROKERS');
  if (kafkaBrokers !== undefined && !kafkaBrokers.split(',').every((broker) => /^[^\s:]+:\d{1,5}$/.test(broker.trim()))) {
    problems.push({ variable: 'KAFKA_BROKERS', message: 'expected host:port[,host:port…]' });
  }
  const topicPrefix = value('TOPIC_PREFIX') ?? DEFAULT_TOPIC_PREFIX;
  if (!/^[A-Za-z0-9._-]*$/.test(topicPrefix)) {
    problems.push({ variable: 'TOPIC_PREFIX', message: 'letters, digits, dot, dash and underscore only' });
  }
  const logLevel = value('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push({ variable: 'LOG_LEVEL', message: `one of ${LOG_LEVELS.join(', ')}` });
  let kafkaPort = LOCAL_KAFKA_PORT;
  try {
    kafkaPort = localKafkaPort(env);
  } catch (error) {
    problems.push(...(error as StackConfigError).problems);
  }
  if (problems.length > 0) throw new StackConfigError(problems);

  return {
    localBroker: kafkaBrokers === undefined,
    localNodes,
    localKafkaPort: kafkaPort,
    stack: defineStack({
      kafkaBrokers: kafkaBrokers ?? localKafkaBrokers(localNodes, kafkaPort),
      databaseUrl,
      topicPrefix,
      githubToken,
      ports,
      bindHost: '127.0.0.1',
      simulatorHost: '127.0.0.1',
      logLevel,
    }),
  };
}
