import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createKafka, KafkaAdmin, silentKafkaLogger, TopicNames } from '@switchyard/kafka';
import { repoRoot } from './paths.js';

/**
 * A single-node Apache Kafka (KRaft: broker and controller in one process) run from the jars Maven fetched into
 * .cache/kafka/<version>/libs. Its data, config and log live in .cache/kafka-data/<name>/. The broker runs
 * detached; `stop` shuts it down cleanly with SIGTERM (controlled shutdown), escalating to SIGKILL after 30 s.
 */
export interface LocalBrokerOptions {
  /** Names the data folder, so a test broker and a dev broker can coexist. */
  name?: string;
  port?: number;
  controllerPort?: number;
  heapMb?: number;
  /** How long `start` waits for the broker to answer an admin request. */
  startTimeoutMs?: number;
}

export interface LocalBroker {
  readonly brokers: string;
  readonly logFile: string;
  /** True when this call started it; false when it was already running. */
  readonly started: boolean;
}

export function kafkaVersion(root = repoRoot()): string {
  const pom = readFileSync(join(root, 'infra/kafka/pom.xml'), 'utf8');
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom);
  if (!match?.[1]) throw new Error('infra/kafka/pom.xml has no <kafka.version>');
  return match[1];
}

function paths(name: string, root = repoRoot()) {
  const base = join(root, '.cache/kafka-data', name);
  return {
    base,
    data: join(base, 'data'),
    config: join(base, 'server.properties'),
    log4j: join(base, 'log4j2.properties'),
    logFile: join(base, 'broker.log'),
    pidFile: join(base, 'broker.pid'),
  };
}

function serverProperties(dataDir: string, port: number, controllerPort: number): string {
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'auto.create.topics.enable=false',
    // One node: every internal topic has one replica.
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=3',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=3',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    // Groups form at once instead of waiting 3 s for more members.
    'group.initial.rebalance.delay.ms=0',
    'num.network.threads=2',
    'num.io.threads=4',
    '',
  ].join('\n');
}

function log4jProperties(logFile: string): string {
  return [
    'status = warn',
    'appender.file.type = File',
    'appender.file.name = FILE',
    `appender.file.fileName = ${logFile}`,
    'appender.file.layout.type = PatternLayout',
    'appender.file.layout.pattern = [%d] %p %m (%c)%n',
    'rootLogger.level = INFO',
    'rootLogger.appenderRef.file.ref = FILE',
    'logger.statechange.name = state.change.logger',
    'logger.statechange.level = WARN',
    '',
  ].join('\n');
}

function java(): string {
  return process.env['JAVA_HOME'] ? join(process.env['JAVA_HOME'], 'bin/java') : 'java';
}

function runJava(args: string[], logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const out = openSync(logFile, 'a');
    const child = spawn(java(), args, { stdio: ['ignore', out, out] });
    closeSync(out); // the child holds its own copy
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${args.join(' ')} exited with ${code}; see ${logFile}`)),
    );
  });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readPid(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}


/** Resolves when the cluster at `brokers` answers a metadata request; rejects after `timeoutMs`. */
export async function waitForKafka(brokers: string, timeoutMs: number, isDead: () => boolean = () => false): Promise<void> {
  const kafka = createKafka({
    brokers: brokers.split(','),
    clientId: 'switchyard-infra',
    logger: silentKafkaLogger,
    connectionTimeoutMs: 1000,
    retry: { retries: 0 },
  });
  const admin = new KafkaAdmin(kafka, new TopicNames(''), silentKafkaLogger);
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  try {
    while (Date.now() < deadline) {
      if (isDead()) throw new Error('the broker process exited');
      try {
        await admin.connect();
        await admin.ping(2000);
        return;
      } catch (error) {
        lastError = error;
        await admin.disconnect().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    }
    throw new Error(`Kafka at ${brokers} did not answer within ${timeoutMs} ms: ${(lastError as Error)?.message}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export async function startLocalBroker(options: LocalBrokerOptions = {}): Promise<LocalBroker> {
  const name = options.name ?? 'local';
  const port = options.port ?? 9092;
  const controllerPort = options.controllerPort ?? port + 1;
  const p = paths(name);
  const brokers = `127.0.0.1:${port}`;
  const running = readPid(p.pidFile);
  if (running !== undefined && isAlive(running)) {
    await waitForKafka(brokers, options.startTimeoutMs ?? 60000, () => !isAlive(running));
    return { brokers, logFile: p.logFile, started: false };
  }
  const root = repoRoot();
  const libs = join(root, '.cache/kafka', kafkaVersion(root), 'libs');
  if (!existsSync(join(libs, '.complete'))) {
    throw new Error(`Kafka jars missing in ${libs}; run a command from the README (they fetch them) first`);
  }
  mkdirSync(p.data, { recursive: true });
  writeFileSync(p.config, serverProperties(p.data, port, controllerPort));
  writeFileSync(p.log4j, log4jProperties(p.logFile));
  const classpath = join(libs, '*');
  const logging = [`-Dlog4j2.configurationFile=${p.log4j}`, `-Dkafka.logs.dir=${p.base}`];
  if (!existsSync(join(p.data, 'meta.properties'))) {
    const clusterId = randomBytes(16).toString('base64url');
    await runJava(
      ['-cp', classpath, ...logging, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', p.config],
      p.logFile,
    );
  }
  const heap = options.heapMb ?? 512;
  const out = openSync(p.logFile, 'a');
  const child = spawn(
    java(),
    [
      `-Xms${Math.min(256, heap)}m`,
      `-Xmx${heap}m`,
      '-XX:+UseG1GC',
      '-Djava.awt.headless=true',
      ...logging,
      '-cp',
      classpath,
      'kafka.Kafka',
      p.config,
    ],
    { detached: true, stdio: ['ignore', out, out] },
  );
  closeSync(out); // the child holds its own copy
  if (child.pid === undefined) throw new Error('could not start java; is Java 17+ installed?');
  const pid = child.pid;
  writeFileSync(p.pidFile, String(pid));
  child.unref();
  try {
    await waitForKafka(brokers, options.startTimeoutMs ?? 60000, () => !isAlive(pid));
  } catch (error) {
    const tail = existsSync(p.logFile) ? readFileSync(p.logFile, 'utf8').split('\n').slice(-20).join('\n') : '';
    throw new Error(`${(error as Error).message}\n--- ${p.logFile} (tail) ---\n${tail}`, { cause: error });
  }
  return { brokers, logFile: p.logFile, started: true };
}

/** Stops the named local broker if it runs. Resolves once the process is gone. */
export async function stopLocalBroker(name = 'local', timeoutMs = 30000): Promise<boolean> {
  const p = paths(name);
  const pid = readPid(p.pidFile);
  if (pid === undefined || !isAlive(pid)) return false;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
  if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  while (isAlive(pid)) await new Promise((resolve) => setTimeout(resolve, 50));
  return true;
}

export function localBrokerStatus(name = 'local'): { running: boolean; pid?: number; logFile: string } {
  const p = paths(name);
  const pid = readPid(p.pidFile);
  return pid !== undefined && isAlive(pid) ? { running: true, pid, logFile: p.logFile } : { running: false, logFile: p.logFile };
}
