import { join } from 'node:path';
import type { ApiKeyLimits } from '@switchyard/events';
import {
  COMPONENT_NAMES,
  defineStack,
  generateGithubToken,
  localUrl,
  repoRoot,
  stackComponents,
  type ComponentName,
  type Stack,
  type StackComponent,
  type StackOptions,
} from '@switchyard/infra';
import { freePort, ServiceProcess, waitFor } from '@switchyard/testkit';

/**
 * What a client of the issue commands holds: send them, read their status, stream issues and command results. The
 * stack tests publish a key with these scopes to their api-keys topic before the services start (testkit `keys`).
 */
export const CLIENT_SCOPES = ['commands:send:github.issue.*', 'commands:read', 'stream:github.issue.*', 'stream:switchyard.command.*'] as const;

/** A budget the load tests do not reach: they send hundreds of commands a second with one key. */
export const UNLIMITED: ApiKeyLimits = { commandsPerSecond: 1_000_000, burst: 1_000_000 };

/** Free ports for every component, so tests never collide with `npm start` or each other. */
export async function freePorts(): Promise<Record<ComponentName, number>> {
  const ports = {} as Record<ComponentName, number>;
  for (const name of COMPONENT_NAMES) ports[name] = await freePort();
  return ports;
}

/** The launcher's stack (infra/src/stack.ts) on a test's Kafka topics, database and free ports. */
export async function testStack(
  fixtures: { brokers: string; topicPrefix: string; databaseUrl: string },
  overrides: Partial<StackOptions> = {},
): Promise<{ stack: Stack; token: string }> {
  const token = overrides.githubToken ?? generateGithubToken();
  const stack = defineStack({
    kafkaBrokers: fixtures.brokers,
    databaseUrl: fixtures.databaseUrl,
    topicPrefix: fixtures.topicPrefix,
    githubToken: token,
    ports: await freePorts(),
    bindHost: '127.0.0.1',
    simulatorHost: '127.0.0.1',
    logLevel: 'info',
    ...overrides,
  });
  return { stack, token };
}

async function startComponent(component: StackComponent, root: string): Promise<ServiceProcess> {
  const options = { name: component.name, entry: join(root, component.packageDir, component.entry), env: { ...component.env }, url: localUrl(component) };
  if (component.readyPath === '/readyz') return ServiceProcess.start(options);
  // The simulator has no /readyz: wait for its own ready path.
  const child = await ServiceProcess.start({ ...options, waitFor: 'none' });
  let exited = false;
  void child.exited.then(() => (exited = true));
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`${component.name} exited before it was ready`);
        return (await fetch(`${options.url}${component.readyPath}`)).ok;
      },
      { timeoutMs: 20000, what: `${component.name} ${component.readyPath}` },
    );
  } catch (error) {
    child.kill();
    throw new Error(`${(error as Error).message}\n${child.tail(30)}`, { cause: error });
  }
  return child;
}

/** The stack's processes, each a `ServiceProcess` running its built entry with exactly the stack's environment. */
export class StackProcesses {
  readonly processes: ReadonlyMap<ComponentName, ServiceProcess>;

  private constructor(processes: Map<ComponentName, ServiceProcess>) {
    this.processes = processes;
  }

  /** Starts every component at once and waits until each is ready; kills them all if one is not. */
  static async start(stack: Stack, root = repoRoot()): Promise<StackProcesses> {
    const settled = await Promise.allSettled(stackComponents(stack).map((component) => startComponent(component, root)));
    const started = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    const failed = settled.flatMap((result) => (result.status === 'rejected' ? [result.reason as Error] : []));
    if (failed.length > 0) {
      for (const child of started) child.kill();
      throw new Error(failed.map((error) => error.message).join('\n'));
    }
    return new StackProcesses(new Map(started.map((child) => [child.name as ComponentName, child])));
  }

  get(name: ComponentName): ServiceProcess {
    const child = this.processes.get(name);
    if (!child) throw new Error(`no process ${name}`);
    return child;
  }

  /** SIGTERM to the services together, then to the simulator they call; each one's exit code. */
  async stop(): Promise<Record<ComponentName, number | null>> {
    const codes = {} as Record<ComponentName, number | null>;
    const services = [...this.processes.values()].filter((child) => child.name !== 'github-simulator');
    await Promise.all(services.map(async (child) => (codes[child.name as ComponentName] = await child.stop())));
    codes['github-simulator'] = await this.get('github-simulator').stop();
    return codes;
  }

  kill(): void {
    for (const child of this.processes.values()) child.kill();
  }

  /** Every output line of every process. */
  lines(): string[] {
    return [...this.processes.values()].flatMap((child) => child.lines);
  }
}
