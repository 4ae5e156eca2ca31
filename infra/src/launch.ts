#!/usr/bin/env node
import { createServer } from 'node:net';
import { join, relative } from 'node:path';
import { DEFAULT_TOPIC_PREFIX } from '@switchyard/events';
import { releaseLocalKafka, startLocalKafka, waitForKafka, type KafkaUser, type LocalKafka } from './kafka-broker.js';
import { DEV_KEY_FILE, devKeyPath, ensureDevKey, type DevKey } from './keys.js';
import { formatLogLine, redact } from './log-format.js';
import { repoRoot } from './paths.js';
import { stopPid } from './pids.js';
import { describeHolder, portHolder } from './port-holder.js';
import { databaseName, DEFAULT_DATABASE_URL } from './postgres.js';
import { describeExit, prepareStack, RunningStack, StackStartError, type UnexpectedExit } from './run-stack.js';
import {
  COMPONENT_NAMES,
  EXAMPLE_REPOSITORY,
  findComponent,
  generateGithubToken,
  KAFKA_PORT_VARIABLE,
  LOCAL_KAFKA_PORT,
  localKafkaName,
  loadLocalStack,
  localUrl,
  portVariable,
  StackConfigError,
  stackComponents,
  type LocalStack,
  type Stack,
} from './stack.js';

/**
 * `npm start`: the whole stack on this machine. Kafka (the local broker, unless KAFKA_BROKERS names a cluster),
 * the database and the topics, the development API key (keys.ts: kept in .cache/dev-key.json while the api-keys
 * topic has it, minted anew otherwise), then the GitHub simulator and the four services as child processes; their
 * log lines are shown one readable line each. The key is printed once, in the ready banner. Ctrl-C, SIGTERM, SIGHUP
 * (a closed terminal), a closed output pipe or an uncaught error stop the services, then give back this run's lease
 * on the local broker, which stops it when this run or an orphan it adopted started it and nothing else of this
 * checkout uses it (kafka-broker.ts). A broker or service left running by a run that was SIGKILLed is reported by
 * the next start, and stopped with `--stop-orphan`. A service that dies takes the stack down with exit code 1.
 * Settings: see stack.ts, or `--help`.
 */

const USAGE = `usage: npm start [-- --brokers 1|3] [-- --stop-orphan] [-- --help]

Runs Switchyard locally: Kafka, Postgres database and topics, the GitHub simulator and the four services.

Options:
  --brokers 3                  run the local Kafka as a 3-node cluster (ports ${LOCAL_KAFKA_PORT}, ${LOCAL_KAFKA_PORT + 2}, ${LOCAL_KAFKA_PORT + 4}): every topic has
                               three replicas and min.insync.replicas=2, so one node may die (default: 1 node)
  --stop-orphan                stop what an earlier run of this checkout left running when it was killed (the local
                               broker, services on the stack's ports) and start afresh; without it they are reported,
                               and an orphaned broker is reused

Environment (all optional):
  KAFKA_BROKERS                use this Kafka cluster and start no broker (default: the local broker on 127.0.0.1:${LOCAL_KAFKA_PORT})
  ${KAFKA_PORT_VARIABLE.padEnd(28)} port of the local broker (default ${LOCAL_KAFKA_PORT}); another port is another local cluster
  DATABASE_URL                 default ${DEFAULT_DATABASE_URL} (created when missing)
  TOPIC_PREFIX                 default ${DEFAULT_TOPIC_PREFIX}
  LOG_LEVEL                    default info
  SWITCHYARD_DEV_KEY_FILE      where the development API key is kept (default ${DEV_KEY_FILE}; mode 0600)
${COMPONENT_NAMES.map((name) => `  ${portVariable(name).padEnd(36)} port of ${name}`).join('\n')}
`;

const NAME_WIDTH = Math.max('switchyard'.length, ...COMPONENT_NAMES.map((name) => name.length));
const color = Boolean(process.stdout.isTTY) && !process.env['NO_COLOR'];
const paint = (code: number, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);

/** False once stdout's reader is gone (EPIPE): nothing more is written, and the stack stops. */
let outputOpen = true;

function out(text: string): void {
  if (outputOpen) process.stdout.write(text);
}

function say(message: string, level: 'info' | 'warn' | 'error' = 'info'): void {
  const line = JSON.stringify({ level, time: new Date().toISOString(), msg: message });
  out(`${formatLogLine('switchyard', line, { color, nameWidth: NAME_WIDTH })}\n`);
}

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
let localNodes = 1;
let stopOrphan = false;
for (let index = 0; index < args.length; index += 1) {
  const arg = args[index];
  if (arg === '--stop-orphan') {
    stopOrphan = true;
    continue;
  }
  const value = arg === '--brokers' ? args[(index += 1)] : arg?.startsWith('--brokers=') ? arg.slice('--brokers='.length) : undefined;
  if (value === '1' || value === '3') {
    localNodes = Number(value);
    continue;
  }
  const problem = value === undefined && arg !== '--brokers' ? `unknown argument: ${arg}` : `--brokers: expected 1 or 3, got ${value ?? 'nothing'}`;
  process.stderr.write(`${problem}\n\n${USAGE}`);
  process.exit(2);
}
const token = generateGithubToken();
let local: LocalStack;
try {
  local = loadLocalStack(process.env, token, { localNodes });
} catch (error) {
  if (!(error instanceof StackConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(2);
}
const { stack } = local;
const kafkaName = localKafkaName(localNodes, local.localKafkaPort);
const root = repoRoot();
const devKeyFile = devKeyPath(process.env, root);
/** Replaced in every line a process prints: the run's GitHub token, then the development key. */
const secrets = [token];

let running: RunningStack | undefined;
let brokerStart: Promise<LocalKafka> | undefined;
let shutdown: Promise<void> | undefined;

/**
 * Stops whatever this run started, in order, and exits with `code`, or 1 when a process did not stop cleanly
 * (`dead` already did not; it is not reported twice).
 */
function stopAll(code: number, dead?: string): Promise<void> {
  shutdown ??= (async () => {
    let exitCode = code;
    if (running) {
      say('stopping the services (SIGTERM; Ctrl-C again to kill)');
      for (const [name, exit] of await running.stop()) {
        if (exit.code !== 0 && name !== dead) {
          say(`${name} ${describeExit(exit)} while stopping`, 'warn');
          exitCode ||= 1;
        }
      }
    }
    const broker = await brokerStart?.catch(() => undefined);
    if (broker) {
      if (broker.stopsWhenUnused) say('giving back the Kafka broker: stopped when nothing else of this checkout uses it');
      const released = await releaseLocalKafka(kafkaName).catch((error: unknown) => {
        say(`could not stop the Kafka broker: ${(error as Error).message}`, 'error');
        exitCode ||= 1;
        return undefined;
      });
      if (released?.stopped) say('stopped the Kafka broker');
      else if (released && released.users.length > 0) say(`left the Kafka broker running: ${usersText(released.users)} still use it`);
      else if (released) say('left the Kafka broker running: it was started outside npm start (node infra/dist/kafka-cli.js stop stops it)');
    }
    say(exitCode === 0 ? 'stopped' : `stopped (exit code ${exitCode})`, exitCode === 0 ? 'info' : 'error');
    process.exit(exitCode);
  })();
  return shutdown;
}

for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (shutdown) {
      // A closed terminal sends SIGHUP once and then may send it again as the session ends: keep stopping.
      if (signal === 'SIGHUP') return;
      say(`${signal} again: killing everything`, 'warn');
      running?.kill();
      process.exit(130);
    }
    out('\n');
    void stopAll(0);
  });
}
// The reader of our output went away (`npm start | head`, a closed terminal): stop, without writing again.
process.stdout.on('error', () => {
  outputOpen = false;
  void stopAll(0);
});
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error: unknown) => {
    if (outputOpen) process.stderr.write(`${event}: ${(error as Error)?.stack ?? String(error)}\n`);
    void stopAll(1);
  });
}

/** "npm test (pid 12), vitest (pid 34)". */
function usersText(users: readonly KafkaUser[]): string {
  return users.map((user) => `${user.what} (pid ${user.pid})`).join(', ');
}

/** Whether `pid` runs a component of this checkout's stack: a service or simulator an earlier run left behind. */
function componentOfThisCheckout(command: string): string | undefined {
  return stackComponents(stack).find((component) => command.includes(join(root, component.packageDir, component.entry)))?.name;
}

function portIsFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Says which process died and why (its last lines); returns its name. */
function reportDeath(death: UnexpectedExit | StackStartError): string {
  const name = death instanceof StackStartError ? death.component : death.name;
  const why = death instanceof StackStartError ? death.message : `${name} ${describeExit(death.exit)}`;
  say(why, 'error');
  const tail = death.tail.slice(-25);
  if (tail.length > 0) {
    say(`last ${tail.length} lines of ${name}:`, 'error');
    for (const line of tail) out(`${formatLogLine(name, redact(line, secrets), { color, nameWidth: NAME_WIDTH })}\n`);
  }
  return name;
}

/** Where a file is, as the user would type it from the repository root. */
function shown(path: string): string {
  const inside = relative(root, path);
  return inside.startsWith('..') ? path : inside;
}

/** The variables `npm run keys` needs to reach this stack's api-keys topic (none with the defaults). */
function keysCommandEnv(stack: Stack): string {
  const settings = [
    ...(stack.kafkaBrokers === '127.0.0.1:9092' ? [] : [`KAFKA_BROKERS=${stack.kafkaBrokers}`]),
    ...(stack.topicPrefix === DEFAULT_TOPIC_PREFIX ? [] : [`TOPIC_PREFIX=${stack.topicPrefix}`]),
  ];
  return settings.map((setting) => `${setting} `).join('');
}

function banner(stack: Stack, broker: LocalKafka | undefined, key: DevKey, seconds: string): string {
  const api = localUrl(findComponent(stack, 'api-gateway-adapter'));
  const stream = localUrl(findComponent(stack, 'ws-fanout'), 'ws');
  const db = new URL(stack.databaseUrl);
  const psql = [
    'psql',
    `-h ${db.hostname}`,
    ...(db.port && db.port !== '5432' ? [`-p ${db.port}`] : []),
    ...(db.username ? [`-U ${decodeURIComponent(db.username)}`] : []),
    databaseName(stack.databaseUrl),
  ].join(' ');
  const { owner, repo } = EXAMPLE_REPOSITORY;
  const create = JSON.stringify({ type: 'github.issue.create', input: { owner, repo, title: 'Widget jams' } });
  const close = JSON.stringify({ type: 'github.issue.update', input: { owner, repo, number: 1, state: 'closed' } });
  const brokerOrigin = !broker
    ? ''
    : broker.started
      ? 'started by this run'
      : broker.orphan
        ? 'left by an earlier run; this run stops it'
        : broker.sharedWith.length > 0
          ? `shared with ${usersText(broker.sharedWith)}`
          : broker.stopsWhenUnused
            ? 'reused'
            : 'already running; left running at exit';
  const kafka = broker
    ? `${stack.kafkaBrokers}  (local ${broker.nodes.length === 1 ? 'broker' : `${broker.nodes.length}-node cluster`}, ${brokerOrigin}; log ${broker.logFile})`
    : `${stack.kafkaBrokers}  (KAFKA_BROKERS)`;
  const heading = (text: string) => paint(1, text.padEnd(10));
  const dim = (text: string) => paint(2, text);
  const issues = `${stream}/v1/stream?types=github.issue.*`;
  const origin = key.minted === undefined ? `kept in ${shown(key.file)}` : `new, saved in ${shown(key.file)}`;
  return [
    '',
    paint(32, `Switchyard is ready (${seconds} s).`),
    '',
    `${heading('Key')} ${key.key}`,
    dim(`  your local development key (admin; ${origin}); every request sends it as Authorization: Bearer`),
    `  export KEY=${key.key}`,
    dim(`  more keys:  ${keysCommandEnv(stack)}npm run keys -- create --name ci --scope 'commands:send:github.issue.*'  (docs/security.md)`),
    '',
    `${heading('Commands')} POST ${api}/v1/commands`,
    `  curl -s ${api}/v1/commands -H "Authorization: Bearer $KEY" -H 'content-type: application/json' \\`,
    `    -d '${create}'`,
    dim(`  then close it:  -d '${close}'`),
    '',
    `${heading('Stream')} ${stream}/v1/stream?types=github.issue.*,switchyard.command.*`,
    `  websocat -H "Authorization: Bearer $KEY" '${issues}'`,
    dim(`  or, Node 22+:  node -e "new WebSocket('${issues}', { headers: { authorization: 'Bearer ' + process.env.KEY } }).onmessage = (m) => console.log(m.data)"`),
    dim(`  in a browser:  new WebSocket('${issues}', ['switchyard.v1', 'switchyard.bearer.${key.key}'])`),
    '',
    `${heading('Postgres')} ${psql}`,
    `  ${psql} -c 'SELECT repository, number, title, state, updated_at FROM github_issues ORDER BY updated_at DESC LIMIT 10'`,
    `  ${psql} -c 'SELECT command_id, command_type, status, error_code, duration_ms FROM command_log ORDER BY updated_at DESC LIMIT 10'`,
    '',
    `${heading('Kafka')} ${kafka}`,
    dim(`  topics ${stack.topicPrefix}commands, ${stack.topicPrefix}command-results, ${stack.topicPrefix}entities, …`),
    `${heading('GitHub')} ${localUrl(stack.simulator)}  (simulator; repository ${owner}/${repo}; control API under /_sim)`,
    `${heading('Metrics')} ${stack.services.map((service) => `${localUrl(service)}/metrics`).join('  ')}`,
    `${heading('Health')} ${stack.services.map((service) => `${localUrl(service)}/readyz`).join('  ')}`,
    '',
    dim('Ctrl-C stops everything.'),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const busy: string[] = [];
  const orphans: { name: string; pid: number; port: number }[] = [];
  for (const component of stackComponents(stack)) {
    if (await portIsFree(component.port, '127.0.0.1')) continue;
    const holder = portHolder(component.port);
    const left = holder && componentOfThisCheckout(holder.command);
    if (holder && left !== undefined) {
      orphans.push({ name: left, pid: holder.pid, port: component.port });
      if (!stopOrphan) {
        busy.push(
          `port ${component.port} (${component.name}) is held by ${left} (pid ${holder.pid}), left running by an earlier run of this ` +
            `checkout that was killed: npm start -- --stop-orphan stops it`,
        );
      }
      continue;
    }
    const who = holder ? describeHolder(holder) : 'another process';
    busy.push(`port ${component.port} (${component.name}) is in use by ${who}: stop it, or set ${portVariable(component.name)}`);
  }
  if (stopOrphan && busy.length === 0 && orphans.length > 0) {
    for (const orphan of orphans) say(`stopping ${orphan.name} (pid ${orphan.pid}) on port ${orphan.port}, left running by an earlier run of this checkout`, 'warn');
    await Promise.all(orphans.map((orphan) => stopPid(orphan.pid, 30000)));
    for (const orphan of orphans) {
      if (!(await portIsFree(orphan.port, '127.0.0.1'))) busy.push(`port ${orphan.port} (${orphan.name}) is still in use after stopping pid ${orphan.pid}`);
    }
  }
  if (busy.length > 0) {
    for (const problem of busy) say(problem, 'error');
    process.exit(1);
  }

  let broker: LocalKafka | undefined;
  if (local.localBroker) {
    const what = localNodes === 1 ? 'broker' : `${localNodes}-node cluster`;
    say(`starting the local Kafka ${what} on ${stack.kafkaBrokers} (or reusing the running one)`);
    brokerStart = startLocalKafka({ name: kafkaName, nodes: localNodes, port: local.localKafkaPort, user: 'npm start', stopOrphan });
    broker = await brokerStart;
    if (broker.orphan) {
      const { startedBy, pids } = broker.orphan;
      say(
        `found the Kafka ${what} (pid ${pids.join(', ')}) left running by ${startedBy.what} (pid ${startedBy.pid}, ` +
          `started ${startedBy.since}), which ended without stopping it; ` +
          (broker.orphan.restarted ? 'stopped it and started it afresh' : 'reusing it; this run stops it (npm start -- --stop-orphan starts afresh)'),
        'warn',
      );
    }
    say(
      broker.started
        ? `Kafka ${what} started (log ${broker.logFile})`
        : broker.sharedWith.length > 0
          ? `Kafka ${what} already running for ${usersText(broker.sharedWith)}; reusing it`
          : `Kafka ${what} already running; reusing it`,
    );
  } else {
    say(`using the Kafka cluster at ${stack.kafkaBrokers} (KAFKA_BROKERS)`);
    await waitForKafka(stack.kafkaBrokers, 15000);
  }
  if (shutdown) return;

  const prepared = await prepareStack(stack);
  say(
    `database ${databaseName(stack.databaseUrl)} ${prepared.databaseCreated ? 'created' : 'exists'}; ` +
      `topics: ${prepared.topics.created.length} created, ${prepared.topics.unchanged.length + prepared.topics.grown.length} present`,
  );
  if (shutdown) return;

  const key = await ensureDevKey(stack, devKeyFile);
  secrets.push(key.key);
  say(
    key.minted === undefined
      ? `development key ${key.keyId} (kept in ${shown(key.file)})`
      : `development key ${key.keyId} minted (${key.minted}); saved in ${shown(key.file)}`,
  );
  if (shutdown) return;

  const started = performance.now();
  running = RunningStack.start(stack, {
    parentEnv: process.env,
    onLine: (name, line) => out(`${formatLogLine(name, redact(line, secrets), { color, nameWidth: NAME_WIDTH })}\n`),
  });
  say(`started ${stackComponents(stack).map((component) => component.name).join(', ')}; waiting for them to be ready`);
  const death = running.unexpectedExit;
  let failure: UnexpectedExit | StackStartError | undefined;
  try {
    failure = await Promise.race([running.waitReady(90000).then(() => undefined), death]);
  } catch (error) {
    if (!(error instanceof StackStartError)) throw error;
    failure = error;
  }
  if (shutdown) return;
  if (failure) return stopAll(1, reportDeath(failure));
  out(banner(stack, broker, key, ((performance.now() - started) / 1000).toFixed(1)));

  const died = await death;
  if (shutdown) return;
  await stopAll(1, reportDeath(died));
}

main().catch((error: unknown) => {
  if (shutdown) return;
  say(`could not start: ${(error as Error).message}`, 'error');
  void stopAll(1);
});
