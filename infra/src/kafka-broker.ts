import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createKafka, KafkaAdmin, silentKafkaLogger, TopicNames } from '@switchyard/kafka';
import { repoRoot } from './paths.js';
import { isAlive, lockFile, readPid, stopPid, waitGone } from './pids.js';
import { describeHolder, portHolder } from './port-holder.js';
import { KAFKA_PORT_VARIABLE } from './stack.js';

export { isAlive };

/**
 * Local Apache Kafka from the jars Maven fetched into .cache/kafka/<version>/libs: one KRaft node, or a cluster of
 * three, each node a broker and a controller in one JVM. A cluster's data, configs and logs live in
 * .cache/kafka-data/<name>/ (`cluster.json` records its id and ports, `node-<id>/` holds each node). The nodes run
 * detached, so any process of this checkout can stop, kill or restart them by name; `stop` shuts them down
 * cleanly with SIGTERM (controlled shutdown), escalating to SIGKILL after 30 s.
 *
 * With three nodes every topic gets three replicas and `min.insync.replicas=2`, internal topics included, so one
 * node can die without losing an acknowledged write or refusing new ones.
 *
 * Who uses a cluster is recorded: a process that starts or reuses it with `user` set leaves a lease in `users/<pid>`,
 * and a cluster started that way is marked to stop when unused (`stop-when-unused.json`). `releaseLocalKafka`
 * removes the caller's lease and stops the cluster when it was so marked and no live process holds a lease — so
 * `npm start`, `npm test` and `npm run bench` of one checkout can share it, and the last one out stops it. A marked
 * cluster found running with no live lease was left by a process that died without stopping it (SIGKILL): an
 * orphan, reported by the next start (`orphan`), which adopts it or, asked to, stops it and starts afresh. A
 * cluster started without `user` (`kafka-cli start`) is never stopped by a release.
 */
export interface LocalKafkaOptions {
  /** Names the data folder, so a test cluster and a dev broker can coexist. */
  name?: string;
  /** 1 (default) or 3. */
  nodes?: number;
  /**
   * The first node's client port; node i (1-based) listens on `port + 2(i-1)` and its controller on the port after
   * it. 0 picks free ports when the cluster is first formatted; they are kept for its later starts.
   */
  port?: number;
  /** Heap per node (default 512 MB for one node, 256 MB each for three). */
  heapMb?: number;
  /** How long `start` waits for every node to register with the cluster. */
  startTimeoutMs?: number;
  /** What this process is (`npm start`, `vitest`): it takes a lease, and a cluster it starts stops when unused. */
  user?: string;
  /** A cluster found orphaned (see above) is stopped and started afresh instead of adopted. */
  stopOrphan?: boolean;
}

/** A process that holds a lease on a local cluster, or that started one marked to stop when unused. */
export interface KafkaUser {
  readonly pid: number;
  readonly what: string;
  /** ISO time the lease was taken or the cluster started. */
  readonly since: string;
}

export interface LocalKafkaNode {
  readonly id: number;
  readonly port: number;
  readonly controllerPort: number;
  readonly logFile: string;
}

export interface LocalKafka {
  readonly name: string;
  /** Comma-separated bootstrap servers of every node, as KAFKA_BROKERS takes them. */
  readonly brokers: string;
  readonly clusterId: string;
  readonly nodes: readonly LocalKafkaNode[];
  /** The first node's log (every node has its own, in `nodes`). */
  readonly logFile: string;
  /** True when this call started at least one node; false when all were already running. */
  readonly started: boolean;
  /** Other live processes with a lease on it when this call returned. */
  readonly sharedWith: readonly KafkaUser[];
  /** True when a release stops it once no lease is left (it was started with `user`); false for `kafka-cli start`. */
  readonly stopsWhenUnused: boolean;
  /**
   * Set when the cluster was found running, marked to stop when unused, with no live lease: the process that
   * started it died without stopping it. Adopted (this caller's release stops it) unless `stopOrphan` restarted it.
   */
  readonly orphan?: { readonly startedBy: KafkaUser; readonly pids: readonly number[]; readonly restarted: boolean };
}

/** What `cluster.json` keeps, so every later start reuses the cluster id and ports it was formatted with. */
interface ClusterFile {
  clusterId: string;
  nodes: { id: number; port: number; controllerPort: number }[];
}

export function kafkaVersion(root = repoRoot()): string {
  const pom = readFileSync(join(root, 'infra/kafka/pom.xml'), 'utf8');
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom);
  if (!match?.[1]) throw new Error('infra/kafka/pom.xml has no <kafka.version>');
  return match[1];
}

function clusterDir(name: string, root = repoRoot()): string {
  return join(root, '.cache/kafka-data', name);
}

function nodePaths(name: string, id: number) {
  const base = join(clusterDir(name), `node-${id}`);
  return {
    base,
    data: join(base, 'data'),
    config: join(base, 'server.properties'),
    log4j: join(base, 'log4j2.properties'),
    logFile: join(base, 'broker.log'),
    pidFile: join(base, 'broker.pid'),
  };
}

function serverProperties(node: ClusterFile['nodes'][number], cluster: ClusterFile, dataDir: string): string {
  const voters = cluster.nodes.map((voter) => `${voter.id}@127.0.0.1:${voter.controllerPort}`).join(',');
  const replicas = cluster.nodes.length >= 3 ? 3 : 1;
  const minIsr = replicas === 3 ? 2 : 1;
  return [
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${voters}`,
    `listeners=PLAINTEXT://127.0.0.1:${node.port},CONTROLLER://127.0.0.1:${node.controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${node.port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'auto.create.topics.enable=false',
    `default.replication.factor=${replicas}`,
    `min.insync.replicas=${minIsr}`,
    'unclean.leader.election.enable=false',
    `offsets.topic.replication.factor=${replicas}`,
    'offsets.topic.num.partitions=3',
    `transaction.state.log.replication.factor=${replicas}`,
    `transaction.state.log.min.isr=${minIsr}`,
    'transaction.state.log.num.partitions=3',
    `share.coordinator.state.topic.replication.factor=${replicas}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    // Groups form at once instead of waiting 3 s for more members.
    'group.initial.rebalance.delay.ms=0',
    // A node that stops heartbeating is fenced (its leaderships move, it leaves every ISR) after 4 s, not 9 s.
    'broker.heartbeat.interval.ms=500',
    'broker.session.timeout.ms=4000',
    // The log cleaner's default 128 MB buffer does not fit a small heap (OutOfMemoryError at 256 MB).
    'log.cleaner.dedupe.buffer.size=16777216',
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

function libsDir(root = repoRoot()): string {
  const libs = join(root, '.cache/kafka', kafkaVersion(root), 'libs');
  if (!existsSync(join(libs, '.complete'))) {
    throw new Error(`Kafka jars missing in ${libs}; run a command from the README (they fetch them) first`);
  }
  return libs;
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

/** The pid of the node's JVM when it runs; a pid file naming a process that is not this node (reused) counts as not running. */
function runningPid(name: string, id: number): number | undefined {
  const p = nodePaths(name, id);
  const pid = readPid(p.pidFile);
  if (pid === undefined || !isAlive(pid)) return undefined;
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(p.config)) return undefined;
  } catch {
    // no /proc here: trust the pid file
  }
  return pid;
}

function readClusterFile(name: string): ClusterFile | undefined {
  const file = join(clusterDir(name), 'cluster.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ClusterFile) : undefined;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no free port'))));
    });
  });
}

function tail(file: string, lines = 20): string {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n') : '';
}

function bootstrap(cluster: ClusterFile): string {
  return cluster.nodes.map((node) => `127.0.0.1:${node.port}`).join(',');
}

/**
 * Resolves when the cluster at `brokers` answers a metadata request listing at least `expectBrokers` registered
 * brokers; rejects after `timeoutMs`, or as soon as `isDead` says the process it waits for is gone.
 */
export async function waitForKafka(
  brokers: string,
  timeoutMs: number,
  isDead: () => boolean = () => false,
  expectBrokers = 1,
): Promise<{ clusterId: string }> {
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
        const described = await admin.describeCluster(2000);
        if (described.brokers >= expectBrokers) return { clusterId: described.clusterId };
        lastError = new Error(`${described.brokers} of ${expectBrokers} brokers registered`);
      } catch (error) {
        lastError = error;
        await admin.disconnect().catch(() => undefined);
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    throw new Error(`Kafka at ${brokers} did not answer within ${timeoutMs} ms: ${(lastError as Error)?.message}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * A single broker from before clusters had a `cluster.json` kept its pid, config and data at the top of its folder.
 * It belongs to this checkout: stop it, so the cluster formatted in its place can take the ports.
 */
async function retireSingleBrokerLayout(name: string): Promise<void> {
  const pid = readPid(join(clusterDir(name), 'broker.pid'));
  if (pid !== undefined && isAlive(pid)) {
    process.kill(pid, 'SIGTERM');
    await waitGone(pid, 30000);
  }
}

/** Creates the cluster's record and formats every node's storage with its id (first start only). */
async function formatCluster(name: string, nodes: number, port: number, libs: string): Promise<ClusterFile> {
  const dir = clusterDir(name);
  await retireSingleBrokerLayout(name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const cluster: ClusterFile = { clusterId: randomBytes(16).toString('base64url'), nodes: [] };
  for (let id = 1; id <= nodes; id += 1) {
    const [clientPort, controllerPort] =
      port === 0 ? [await freePort(), await freePort()] : [port + 2 * (id - 1), port + 2 * (id - 1) + 1];
    cluster.nodes.push({ id, port: clientPort, controllerPort });
  }
  for (const node of cluster.nodes) await assertPortsFree(name, node, port === 0);
  for (const node of cluster.nodes) {
    const p = nodePaths(name, node.id);
    mkdirSync(p.data, { recursive: true });
    writeNodeConfig(name, node, cluster);
    await runJava(
      ['-cp', join(libs, '*'), ...loggingArgs(p), 'kafka.tools.StorageTool', 'format', `--cluster-id=${cluster.clusterId}`, '-c', p.config],
      p.logFile,
    );
  }
  writeFileSync(join(dir, 'cluster.json'), `${JSON.stringify(cluster, null, 2)}\n`);
  return cluster;
}

function loggingArgs(p: ReturnType<typeof nodePaths>): string[] {
  return [`-Dlog4j2.configurationFile=${p.log4j}`, `-Dkafka.logs.dir=${p.base}`];
}

function writeNodeConfig(name: string, node: ClusterFile['nodes'][number], cluster: ClusterFile): void {
  const p = nodePaths(name, node.id);
  writeFileSync(p.config, serverProperties(node, cluster, p.data));
  writeFileSync(p.log4j, log4jProperties(p.logFile));
}

/** Who holds a port, for a message: another checkout's Kafka is named with how to stop it there. */
function portHolderText(port: number): string {
  const holder = portHolder(port);
  if (holder === undefined) return 'another process';
  if (holder.kafka === undefined) return describeHolder(holder);
  if (holder.kafka.checkout === repoRoot()) return `the local Kafka '${holder.kafka.cluster}' of this checkout (pid ${holder.pid})`;
  return (
    `a Kafka broker of another checkout, ${holder.kafka.checkout} (pid ${holder.pid}; stop it there with ` +
    `node infra/dist/kafka-cli.js stop --name ${holder.kafka.cluster})`
  );
}

function portInUse(name: string, node: ClusterFile['nodes'][number], port: number, portsChosenFree: boolean): Error {
  const remedy = portsChosenFree
    ? `or remove ${clusterDir(name)}, and other free ports are chosen`
    : `or choose another port: ${KAFKA_PORT_VARIABLE}=${node.port + 100} (npm start, npm test and npm run bench read it)`;
  return new Error(`port ${port} is in use by ${portHolderText(port)}, and Kafka node ${node.id} of '${name}' needs it: stop that, ${remedy}`);
}

/** Refuses, naming the port and what holds it, when one of a node's ports is taken. */
async function assertPortsFree(name: string, node: ClusterFile['nodes'][number], portsChosenFree: boolean): Promise<void> {
  for (const port of [node.port, node.controllerPort]) {
    if (!(await portIsFree(port))) throw portInUse(name, node, port, portsChosenFree);
  }
}

/** Spawns one node's JVM, detached. Refuses when its ports are taken, naming them. */
async function spawnNode(name: string, node: ClusterFile['nodes'][number], cluster: ClusterFile, heapMb: number, libs: string): Promise<number> {
  await assertPortsFree(name, node, false);
  writeNodeConfig(name, node, cluster);
  const p = nodePaths(name, node.id);
  const out = openSync(p.logFile, 'a');
  const child = spawn(
    java(),
    [
      `-Xms${Math.min(256, heapMb)}m`,
      `-Xmx${heapMb}m`,
      '-XX:+UseG1GC',
      '-Djava.awt.headless=true',
      ...loggingArgs(p),
      '-cp',
      join(libs, '*'),
      'kafka.Kafka',
      p.config,
    ],
    { detached: true, stdio: ['ignore', out, out] },
  );
  closeSync(out); // the child holds its own copy
  if (child.pid === undefined) throw new Error('could not start java; is Java 17+ installed?');
  writeFileSync(p.pidFile, String(child.pid));
  child.unref();
  return child.pid;
}

function usersDir(name: string): string {
  return join(clusterDir(name), 'users');
}

function markerFile(name: string): string {
  return join(clusterDir(name), 'stop-when-unused.json');
}

function readUser(file: string): KafkaUser | undefined {
  try {
    const user = JSON.parse(readFileSync(file, 'utf8')) as KafkaUser;
    return Number.isInteger(user.pid) && typeof user.what === 'string' ? user : undefined;
  } catch {
    return undefined;
  }
}

/** Processes with a live lease on the cluster; leases of processes that are gone are removed on the way. */
function liveUsers(name: string, except = -1): KafkaUser[] {
  const dir = usersDir(name);
  if (!existsSync(dir)) return [];
  const users: KafkaUser[] = [];
  for (const entry of readdirSync(dir)) {
    const file = join(dir, entry);
    const user = readUser(file);
    if (user !== undefined && isAlive(user.pid)) {
      if (user.pid !== except) users.push(user);
    } else {
      rmSync(file, { force: true });
    }
  }
  return users;
}

function writeUser(file: string, what: string): void {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ pid: process.pid, what, since: new Date().toISOString() } satisfies KafkaUser)}\n`);
}

/**
 * Serialises starting and releasing one cluster among the processes of this checkout, so that a release that
 * stops the cluster never races a start that means to reuse it. A lock whose holder died is taken over.
 */
async function withClusterLock<T>(name: string, timeoutMs: number, run: () => Promise<T>): Promise<T> {
  const release = await lockFile(join(repoRoot(), '.cache/kafka-data', `${name}.start.lock`), timeoutMs, `the local Kafka '${name}' is being started or stopped`);
  try {
    return await run();
  } finally {
    release();
  }
}

function describe(name: string, cluster: ClusterFile, details: Pick<LocalKafka, 'started' | 'sharedWith' | 'stopsWhenUnused' | 'orphan'>): LocalKafka {
  const nodes = cluster.nodes.map((node) => ({ ...node, logFile: nodePaths(name, node.id).logFile }));
  return { name, brokers: bootstrap(cluster), clusterId: cluster.clusterId, nodes, logFile: nodes[0]!.logFile, ...details };
}

/**
 * Starts the named local cluster's nodes that are not running (formatting it on first use) and waits until every
 * node is registered. Nodes already running are reused once the cluster they answer for is the one this checkout
 * formatted (same cluster id), so a broker of another checkout on the same ports is refused rather than used. A
 * node that exits while starting (a port taken meanwhile, say) fails the start with the tail of its log. With
 * `user`, this process takes a lease (see the top of this file) that `releaseLocalKafka` gives back.
 */
export async function startLocalKafka(options: LocalKafkaOptions = {}): Promise<LocalKafka> {
  const name = options.name ?? 'local';
  const timeoutMs = options.startTimeoutMs ?? 60000;
  return withClusterLock(name, timeoutMs + 60000, () => startLocked(name, timeoutMs, options));
}

async function startLocked(name: string, timeoutMs: number, options: LocalKafkaOptions): Promise<LocalKafka> {
  const count = options.nodes ?? 1;
  if (count !== 1 && count !== 3) throw new Error(`a local Kafka cluster has 1 or 3 nodes, not ${count}`);
  const heapMb = options.heapMb ?? (count === 1 ? 512 : 256);
  const libs = libsDir();
  let cluster = readClusterFile(name);
  if (cluster !== undefined && cluster.nodes.length !== count) {
    if (cluster.nodes.some((node) => runningPid(name, node.id) !== undefined)) {
      throw new Error(
        `the local Kafka '${name}' runs with ${cluster.nodes.length} node(s), not ${count}: stop it first ` +
          `(node infra/dist/kafka-cli.js stop --name ${name})`,
      );
    }
    cluster = undefined;
  }
  cluster ??= await formatCluster(name, count, options.port ?? 9092, libs);

  const running = cluster.nodes.flatMap((node) => {
    const pid = runningPid(name, node.id);
    return pid === undefined ? [] : [pid];
  });
  const sharedWith = liveUsers(name, process.pid);
  const marker = readUser(markerFile(name));
  let orphan: LocalKafka['orphan'];
  if (running.length > 0 && marker !== undefined && sharedWith.length === 0 && marker.pid !== process.pid && !isAlive(marker.pid)) {
    orphan = { startedBy: marker, pids: running, restarted: options.stopOrphan === true };
    if (options.stopOrphan) await stopLocalKafka(name);
  }
  if (running.length === 0) rmSync(markerFile(name), { force: true });

  const pids = new Map<number, number>();
  let started = false;
  for (const node of cluster.nodes) {
    const pid = runningPid(name, node.id);
    if (pid !== undefined) {
      pids.set(node.id, pid);
      continue;
    }
    pids.set(node.id, await spawnNode(name, node, cluster, heapMb, libs));
    started = true;
  }
  if (started && options.user !== undefined) writeUser(markerFile(name), options.user);
  if (options.user !== undefined) writeUser(join(usersDir(name), String(process.pid)), options.user);
  const dead = () => [...pids.values()].some((pid) => !isAlive(pid));
  let answered: { clusterId: string };
  try {
    answered = await waitForKafka(bootstrap(cluster), timeoutMs, dead, count);
  } catch (error) {
    if (options.user !== undefined) rmSync(join(usersDir(name), String(process.pid)), { force: true });
    throw startFailure(name, cluster, error as Error);
  }
  if (answered.clusterId !== cluster.clusterId) {
    if (options.user !== undefined) rmSync(join(usersDir(name), String(process.pid)), { force: true });
    throw new Error(
      `the Kafka answering on ${bootstrap(cluster)} is cluster ${answered.clusterId}, not the '${name}' cluster ` +
        `this checkout formatted (${cluster.clusterId}): another checkout's broker holds the port`,
    );
  }
  const stopsWhenUnused = existsSync(markerFile(name));
  return describe(name, cluster, { started, sharedWith, stopsWhenUnused, ...(orphan === undefined ? {} : { orphan }) });
}

/** A start that failed: a port taken under a starting node is said as such; otherwise the tail of every node's log. */
function startFailure(name: string, cluster: ClusterFile, error: Error): Error {
  for (const node of cluster.nodes) {
    if (/Address already in use/.test(tail(nodePaths(name, node.id).logFile, 40))) {
      return portInUse(name, node, node.port, false);
    }
  }
  const logs = cluster.nodes.map((node) => `--- ${nodePaths(name, node.id).logFile} (tail) ---\n${tail(nodePaths(name, node.id).logFile)}`);
  return new Error(`${error.message}\n${logs.join('\n')}`, { cause: error });
}

/**
 * Gives back this process's lease on the cluster, and stops the cluster when it is marked to stop when unused and
 * no other live process holds a lease. Says whether it stopped it, and who still uses it otherwise.
 */
export async function releaseLocalKafka(name = 'local'): Promise<{ stopped: boolean; users: readonly KafkaUser[] }> {
  return withClusterLock(name, 60000, async () => {
    rmSync(join(usersDir(name), String(process.pid)), { force: true });
    const users = liveUsers(name);
    if (users.length > 0 || !existsSync(markerFile(name))) return { stopped: false, users };
    return { stopped: await stopLocalKafka(name), users };
  });
}

/** Stops every running node of the named cluster (all at once, so no node waits for a quorum that is leaving). */
export async function stopLocalKafka(name = 'local', timeoutMs = 30000): Promise<boolean> {
  const cluster = readClusterFile(name);
  if (cluster === undefined) return false;
  const pids = cluster.nodes.flatMap((node) => {
    const pid = runningPid(name, node.id);
    return pid === undefined ? [] : [pid];
  });
  await Promise.all(pids.map((pid) => stopPid(pid, timeoutMs)));
  rmSync(markerFile(name), { force: true });
  return pids.length > 0;
}

/** SIGKILLs one node, as a crash would; resolves once the process is gone. */
export async function killLocalKafkaNode(name: string, id: number): Promise<void> {
  const pid = runningPid(name, id);
  if (pid === undefined) throw new Error(`Kafka node ${id} of '${name}' is not running`);
  process.kill(pid, 'SIGKILL');
  await waitGone(pid, 5000);
}

/** Starts one stopped node of a running cluster again and waits until every node is registered. */
export async function restartLocalKafkaNode(name: string, id: number, options: { heapMb?: number; timeoutMs?: number } = {}): Promise<void> {
  const cluster = readClusterFile(name);
  const node = cluster?.nodes.find((candidate) => candidate.id === id);
  if (cluster === undefined || node === undefined) throw new Error(`the local Kafka '${name}' has no node ${id}`);
  if (runningPid(name, id) !== undefined) throw new Error(`Kafka node ${id} of '${name}' is running`);
  const pid = await spawnNode(name, node, cluster, options.heapMb ?? (cluster.nodes.length === 1 ? 512 : 256), libsDir());
  await waitForKafka(bootstrap(cluster), options.timeoutMs ?? 60000, () => !isAlive(pid), cluster.nodes.length);
}

export interface LocalKafkaStatus {
  readonly running: boolean;
  readonly nodes: readonly { id: number; pid?: number; port: number; logFile: string }[];
  /** Live processes holding a lease. */
  readonly users: readonly KafkaUser[];
  /** Whether the last release stops it (it was started with a `user`). */
  readonly stopsWhenUnused: boolean;
}

export function localKafkaStatus(name = 'local'): LocalKafkaStatus {
  const cluster = readClusterFile(name);
  if (cluster === undefined) return { running: false, nodes: [], users: [], stopsWhenUnused: false };
  const nodes = cluster.nodes.map((node) => {
    const pid = runningPid(name, node.id);
    return { id: node.id, port: node.port, logFile: nodePaths(name, node.id).logFile, ...(pid === undefined ? {} : { pid }) };
  });
  return { running: nodes.some((node) => node.pid !== undefined), nodes, users: liveUsers(name), stopsWhenUnused: existsSync(markerFile(name)) };
}

/**
 * The node that is the active controller (the KRaft quorum's leader), read from the nodes' own logs: each node
 * logs its Raft state transitions with the epoch, and the leader of the highest epoch a running node has entered
 * is the active one.
 */
export function activeController(name: string): number {
  const cluster = readClusterFile(name);
  if (cluster === undefined) throw new Error(`no local Kafka '${name}'`);
  let best: { epoch: number; leader: number } | undefined;
  for (const node of cluster.nodes) {
    if (runningPid(name, node.id) === undefined) continue;
    const lines = readFileSync(nodePaths(name, node.id).logFile, 'utf8').split('\n');
    for (const line of lines) {
      const leader = /\[RaftManager id=(\d+)\] Completed transition to Leader\(.*?\bepoch=(\d+)/.exec(line);
      const follower = /Completed transition to FollowerState\(fetchTimeoutMs=\d+, epoch=(\d+), leader=(\d+)/.exec(line);
      const seen = leader
        ? { epoch: Number(leader[2]), leader: Number(leader[1]) }
        : follower
          ? { epoch: Number(follower[1]), leader: Number(follower[2]) }
          : undefined;
      if (seen && (best === undefined || seen.epoch > best.epoch)) best = seen;
    }
  }
  if (best === undefined) throw new Error(`no running node of '${name}' has logged a quorum leader yet`);
  return best.leader;
}
