import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createKafka, KafkaAdmin, silentKafkaLogger, TopicNames, type KafkaLogger, type ProvisionResult } from '@switchyard/kafka';
import { repoRoot } from './paths.js';
import { ensureDatabase } from './postgres.js';
import { localUrl, stackComponents, type ComponentName, type Stack, type StackComponent } from './stack.js';

/**
 * Runs a `Stack` (stack.ts) as child processes: `node <package>/<entry>` with exactly the component's environment,
 * each in its own process group so a terminal's Ctrl-C reaches only the launcher, which then stops them in order.
 * Used by `npm start` (launch.ts) and the benchmarks.
 */

export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export function describeExit(exit: ProcessExit): string {
  return exit.signal ? `was killed by ${exit.signal}` : `exited with code ${String(exit.code)}`;
}

/** Variables of the launcher's own environment that every child also gets: tooling, locale, libpq defaults. */
const INHERITED = /^(PATH|HOME|TMPDIR|TZ|LANG|LC_[A-Z]+|NODE_EXTRA_CA_CERTS|PG(PASSWORD|PASSFILE|SSL[A-Z]*|SERVICEFILE))$/;

export function inheritedEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && INHERITED.test(key)) out[key] = value;
  return out;
}

const TAIL_LINES = 200;

/** One component running as a child process. */
export class ManagedProcess {
  readonly component: StackComponent;
  readonly exited: Promise<ProcessExit>;
  private readonly child: ChildProcess;
  private readonly recent: string[] = [];
  private exit: ProcessExit | undefined;

  constructor(component: StackComponent, root: string, baseEnv: Record<string, string>, onLine: (line: string) => void) {
    this.component = component;
    const cwd = join(root, component.packageDir);
    this.child = spawn(process.execPath, [join(cwd, component.entry)], {
      cwd,
      env: { ...baseEnv, ...component.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        this.recent.push(line);
        if (this.recent.length > TAIL_LINES) this.recent.shift();
        onLine(line);
      });
    }
    // 'close', not 'exit': by then every line still in the pipes has been read.
    this.exited = new Promise((resolve) => {
      this.child.once('error', (error) => {
        this.recent.push(`could not start: ${error.message}`);
        this.exit = { code: null, signal: null };
        resolve(this.exit);
      });
      this.child.once('close', (code, signal) => {
        this.exit ??= { code, signal };
        resolve(this.exit);
      });
    });
  }

  get name(): ComponentName {
    return this.component.name;
  }

  get hasExited(): boolean {
    return this.exit !== undefined || this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** The last `count` output lines, oldest first. */
  tail(count: number): string[] {
    return this.recent.slice(-count);
  }

  /** SIGTERM (graceful shutdown), SIGKILL after `timeoutMs`; resolves with how it ended. */
  async stop(timeoutMs = 30000): Promise<ProcessExit> {
    if (this.hasExited) return this.exited;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (this.hasExited || this.child.pid === undefined) return;
    try {
      process.kill(this.child.pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** A component did not come up: it exited, or did not answer its ready path in time. */
export class StackStartError extends Error {
  readonly component: ComponentName;
  readonly tail: readonly string[];

  constructor(component: ComponentName, reason: string, tail: readonly string[]) {
    super(`${component} ${reason}`);
    this.name = 'StackStartError';
    this.component = component;
    this.tail = tail;
  }
}

export interface UnexpectedExit {
  readonly name: ComponentName;
  readonly exit: ProcessExit;
  readonly tail: readonly string[];
}

export interface StartStackOptions {
  /** Repository root (default: found from this module). */
  readonly root?: string;
  /** Every output line of every component, as it arrives. */
  readonly onLine?: (name: ComponentName, line: string) => void;
  /** The launcher's environment; only tooling and libpq variables are handed on (`inheritedEnv`). */
  readonly parentEnv?: Readonly<Record<string, string | undefined>>;
}

/** The stack's processes, started together. */
export class RunningStack {
  readonly processes: ReadonlyMap<ComponentName, ManagedProcess>;
  /** Resolves when a component exits while the stack is not being stopped. */
  readonly unexpectedExit: Promise<UnexpectedExit>;
  readonly stack: Stack;
  private stopping: Promise<Map<ComponentName, ProcessExit>> | undefined;
  private readonly killOnExit = () => {
    for (const child of this.processes.values()) child.signal('SIGKILL');
  };

  private constructor(stack: Stack, options: StartStackOptions) {
    this.stack = stack;
    const root = options.root ?? repoRoot();
    const baseEnv = inheritedEnv(options.parentEnv ?? {});
    const missing = stackComponents(stack).filter((component) => !existsSync(join(root, component.packageDir, component.entry)));
    if (missing.length > 0) {
      const files = missing.map((component) => `${component.packageDir}/${component.entry}`).join(', ');
      throw new Error(`not built: ${files}; run \`npx tsc -b\` (npm start builds first)`);
    }
    this.processes = new Map(
      stackComponents(stack).map((component) => [
        component.name,
        new ManagedProcess(component, root, baseEnv, (line) => options.onLine?.(component.name, line)),
      ]),
    );
    // The launcher dying without stopping the stack must not leave the services behind.
    process.once('exit', this.killOnExit);
    this.unexpectedExit = Promise.race(
      [...this.processes.values()].map(async (child) => {
        const exit = await child.exited;
        if (this.stopping) return new Promise<never>(() => undefined);
        return { name: child.name, exit, tail: child.tail(TAIL_LINES) };
      }),
    );
  }

  /** Spawns every component at once (none waits for another: each retries its dependencies itself). */
  static start(stack: Stack, options: StartStackOptions = {}): RunningStack {
    return new RunningStack(stack, options);
  }

  process(name: ComponentName): ManagedProcess {
    const child = this.processes.get(name);
    if (!child) throw new Error(`no process ${name}`);
    return child;
  }

  /**
   * Resolves once every component answers 200 on its ready path. Rejects with StackStartError when one exits
   * first or is not ready within `timeoutMs` (the error carries its last answer and log lines).
   */
  async waitReady(timeoutMs = 60000): Promise<void> {
    await Promise.all([...this.processes.values()].map((child) => this.waitOne(child, timeoutMs)));
  }

  private async waitOne(child: ManagedProcess, timeoutMs: number): Promise<void> {
    const url = `${localUrl(child.component)}${child.component.readyPath}`;
    const deadline = Date.now() + timeoutMs;
    let last: string;
    for (;;) {
      if (child.hasExited) {
        throw new StackStartError(child.name, `${describeExit(await child.exited)} before it was ready`, child.tail(30));
      }
      if (this.stopping) throw new StackStartError(child.name, 'was stopped before it was ready', []);
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
        if (response.ok) return;
        last = `${response.status} ${cutText(await response.text(), 500)}`;
      } catch (error) {
        last = (error as Error).message;
      }
      if (Date.now() > deadline) {
        throw new StackStartError(child.name, `was not ready after ${timeoutMs} ms; ${child.component.readyPath}: ${last}`, child.tail(30));
      }
      await new Promise((resolve) => setTimeout(resolve, 150));
    }
  }

  /**
   * SIGTERM to the services (together; each drains and leaves its consumer group), then to the simulator they
   * call; each gets `timeoutMs` before SIGKILL. Resolves with every component's exit. Idempotent.
   */
  stop(timeoutMs = 30000): Promise<Map<ComponentName, ProcessExit>> {
    this.stopping ??= (async () => {
      const exits = new Map<ComponentName, ProcessExit>();
      const services = [...this.processes.values()].filter((child) => child.name !== this.stack.simulator.name);
      await Promise.all(services.map(async (child) => exits.set(child.name, await child.stop(timeoutMs))));
      const simulator = this.process(this.stack.simulator.name);
      exits.set(simulator.name, await simulator.stop(timeoutMs));
      process.removeListener('exit', this.killOnExit);
      return exits;
    })();
    return this.stopping;
  }

  /** SIGKILL to everything: a second Ctrl-C. */
  kill(): void {
    this.killOnExit();
  }
}

function cutText(text: string, max: number): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max)}…` : oneLine;
}


export interface PreparedStack {
  readonly databaseCreated: boolean;
  readonly topics: ProvisionResult;
}

/** Creates the stack's database when missing and its topics (the whole catalog under its prefix). */
export async function prepareStack(stack: Stack, logger: KafkaLogger = silentKafkaLogger): Promise<PreparedStack> {
  let created: boolean;
  try {
    ({ created } = await ensureDatabase(stack.databaseUrl));
  } catch (cause) {
    const url = new URL(stack.databaseUrl);
    url.password = '';
    throw new Error(`Postgres at ${url.toString()} (DATABASE_URL): ${(cause as Error).message}`, { cause });
  }
  const kafka = createKafka({ brokers: stack.kafkaBrokers.split(','), clientId: 'switchyard-launcher', logger });
  const admin = new KafkaAdmin(kafka, new TopicNames(stack.topicPrefix), logger);
  try {
    await admin.connect();
    return { databaseCreated: created, topics: await admin.provision() };
  } catch (cause) {
    throw new Error(`creating the topics on Kafka at ${stack.kafkaBrokers}: ${(cause as Error).message}`, { cause });
  } finally {
    await admin.disconnect();
  }
}
