import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import {
  COMPONENT_NAMES,
  dropDatabase,
  KAFKA_PORT_VARIABLE,
  localKafkaName,
  localKafkaStatus,
  portHolder,
  portVariable,
  releaseLocalKafka,
  repoRoot,
  startLocalKafka,
  stopLocalKafka,
  withDatabase,
  type ComponentName,
} from '@switchyard/infra';
import { freePort, test, uniqueName, waitFor } from '@switchyard/testkit';
import { describe, expect, onTestFinished } from 'vitest';
import { alive, children, killWhenDone, Launcher, launcherEnv } from './support/launcher.js';

/**
 * `npm start` with its own local broker (no KAFKA_BROKERS): the truth about the broker, and nothing left running
 * after the launcher goes away. Each test moves the broker to free ports with SWITCHYARD_KAFKA_PORT, which makes it
 * a cluster of its own (`local-<port>`) beside the one the other tests share; it is stopped and its data removed
 * when the test ends.
 */

const root = repoRoot();

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port whose next port is free too: a node's client and controller listeners. */
async function freeBrokerPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port < 65000 && (await portIsFree(port + 1))) return port;
  }
}

/** Removes the local cluster `name` when the test ends: its nodes, its data, its lock. */
function removeClusterWhenDone(name: string): void {
  onTestFinished(async () => {
    await stopLocalKafka(name, 10000);
    rmSync(join(root, '.cache/kafka-data', name), { recursive: true, force: true });
    rmSync(join(root, '.cache/kafka-data', `${name}.start.lock`), { force: true });
  });
}

async function ownBrokerEnv(databaseUrl: string, port: number): Promise<Record<string, string>> {
  removeClusterWhenDone(localKafkaName(1, port));
  return { ...(await launcherEnv({ topicPrefix: `${uniqueName('lb')}.`, databaseUrl })), [KAFKA_PORT_VARIABLE]: String(port) };
}

/** The pid of each running node of the launcher's cluster on `port`. */
function brokerPids(port: number): number[] {
  return localKafkaStatus(localKafkaName(1, port)).nodes.flatMap((node) => (node.pid === undefined ? [] : [node.pid]));
}

/** Who listens on each component's port: the processes of a launcher that is gone are found this way. */
function componentHolders(env: Record<string, string>): Map<ComponentName, number> {
  const found = new Map<ComponentName, number>();
  for (const name of COMPONENT_NAMES) {
    const holder = portHolder(Number(env[portVariable(name)]));
    if (holder !== undefined) found.set(name, holder.pid);
  }
  return found;
}

describe('npm start and its local broker', () => {
  test('a process holding the broker port: the broker step fails at once naming the port, its holder and the variable that moves it', async ({ database }) => {
    const holder = createServer();
    const port = await freeBrokerPort();
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => holder.close(() => resolve())));

    const launcher = new Launcher(await ownBrokerEnv(database.url, port));
    expect(await launcher.exited).toBe(1);
    expect(launcher.output).toContain(`port ${port} is in use by pid ${process.pid} (`);
    expect(launcher.output).toContain(`or choose another port: ${KAFKA_PORT_VARIABLE}=${port + 100}`);
    expect(launcher.output).not.toMatch(/Kafka broker started|Switchyard is ready/);
    expect(children(launcher.pid).size).toBe(0);
    expect(brokerPids(port)).toEqual([]);
  });

  test('a broker of another data directory on the port is refused as not this checkout’s, and left as it was', async ({ database }) => {
    const other = uniqueName('sy-other-');
    removeClusterWhenDone(other);
    const foreign = await startLocalKafka({ name: other, port: 0 });
    const port = foreign.nodes[0]!.port;
    const foreignPid = localKafkaStatus(other).nodes[0]!.pid!;

    const launcher = new Launcher(await ownBrokerEnv(database.url, port));
    expect(await launcher.exited).toBe(1);
    expect(launcher.output).toContain(`port ${port} is in use by the local Kafka '${other}' of this checkout (pid ${foreignPid})`);
    expect(launcher.output).not.toMatch(/Kafka broker started|already running|Switchyard is ready/);
    expect(alive(foreignPid)).toBe(true);
    expect(brokerPids(port)).toEqual([]);
  });

  test('a Kafka node of another checkout holding a port is named with that checkout and how to stop it there', async () => {
    // What /proc shows for a node started from another checkout: `… kafka.Kafka <checkout>/.cache/kafka-data/<name>/node-1/server.properties`.
    const elsewhere = '/srv/other-clone';
    const script = "require('net').createServer().listen(0, '127.0.0.1', function () { console.log(this.address().port) })";
    const fake = spawn(process.execPath, ['-e', script, 'kafka.Kafka', `${elsewhere}/.cache/kafka-data/local/node-1/server.properties`], { stdio: ['ignore', 'pipe', 'inherit'] });
    onTestFinished(() => void fake.kill('SIGKILL'));
    const port = await new Promise<number>((resolve) => fake.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
    expect(portHolder(port)).toMatchObject({ pid: fake.pid, kafka: { checkout: elsewhere, cluster: 'local' } });
  });

  test('a broker two processes use is stopped by the last one to give it back, not the first', async () => {
    const name = uniqueName('sy-shared-');
    removeClusterWhenDone(name);
    const mine = await startLocalKafka({ name, port: 0, user: 'this test' });
    expect(mine.started).toBe(true);
    // Another process of this checkout takes a lease on it, as `npm test` does beside `npm start`.
    const script =
      `const { startLocalKafka } = await import(${JSON.stringify(join(root, 'infra/dist/index.js'))});` +
      `const kafka = await startLocalKafka({ name: ${JSON.stringify(name)}, port: 0, user: 'other run' });` +
      'console.log(JSON.stringify({ started: kafka.started, sharedWith: kafka.sharedWith.map((user) => user.what) }));' +
      'setInterval(() => {}, 1000);';
    const other = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    onTestFinished(() => void other.kill('SIGKILL'));
    const joined = await new Promise<string>((resolve) => other.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim())));
    expect(JSON.parse(joined)).toEqual({ started: false, sharedWith: ['this test'] });

    // The first to let go (the one that started it) leaves it running for the other.
    expect(await releaseLocalKafka(name)).toEqual({ stopped: false, users: [expect.objectContaining({ pid: other.pid, what: 'other run' })] });
    expect(localKafkaStatus(name).running).toBe(true);
    // The other dies without giving its lease back: the lease is stale, and the next release stops the broker.
    other.kill('SIGKILL');
    await new Promise((resolve) => other.once('exit', resolve));
    expect(await releaseLocalKafka(name)).toEqual({ stopped: true, users: [] });
    expect(localKafkaStatus(name).running).toBe(false);

    // A pid file naming a live process that is not the node (its pid reused) does not count as running.
    writeFileSync(join(root, '.cache/kafka-data', name, 'node-1/broker.pid'), String(process.pid));
    expect(localKafkaStatus(name).running).toBe(false);
  });

  test('SIGHUP (a closed terminal): the services and the broker this run started are all gone afterwards', async ({ database }) => {
    const port = await freeBrokerPort();
    const launcher = new Launcher(await ownBrokerEnv(database.url, port));
    await launcher.waitForOutput('Switchyard is ready', 120000);
    expect(launcher.output).toContain('Kafka broker started');
    expect(launcher.output).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} {2}\\(local broker, started by this run;`));
    const pids = [...children(launcher.pid).values(), ...brokerPids(port)];
    expect(pids).toHaveLength(COMPONENT_NAMES.length + 1);
    killWhenDone(pids);

    launcher.signal('SIGHUP');
    expect(await launcher.exited).toBe(0);
    for (const pid of pids) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    expect(launcher.output).toContain('stopped the Kafka broker');
  });

  test('a closed output pipe: the launcher stops, and the broker it started with it', async ({ database }) => {
    const port = await freeBrokerPort();
    const env = await ownBrokerEnv(database.url, port);
    const launcher = new Launcher(env);
    await launcher.waitForOutput('Kafka broker started', 120000);
    const broker = brokerPids(port);
    expect(broker).toHaveLength(1);
    killWhenDone(broker);
    // The reader goes away; the launcher's next line meets a closed pipe.
    launcher.child.stdout!.destroy();
    expect(await launcher.exited).toBe(0);
    await waitFor(() => !alive(broker[0]!), { timeoutMs: 5000, what: 'the broker to be gone' });
    expect(componentHolders(env).size).toBe(0);
  });

  test('after a SIGKILL the next start reports what was left running, --stop-orphan stops it, and an orphaned broker alone is adopted and stopped', { timeout: 240000 }, async ({
    database,
  }) => {
    const port = await freeBrokerPort();
    const env = await ownBrokerEnv(database.url, port);
    const first = new Launcher(env);
    await first.waitForOutput('Switchyard is ready', 120000);
    const [orphanBroker] = brokerPids(port);
    const orphans = children(first.pid);
    killWhenDone([orphanBroker!, ...orphans.values()]);
    first.signal('SIGKILL');
    await first.exited;
    // Nothing the launcher could do: its children and the broker run on.
    expect(alive(orphanBroker!)).toBe(true);
    expect([...componentHolders(env).entries()].sort()).toEqual([...orphans.entries()].sort());

    // Found and reported, nothing started.
    const second = new Launcher(env);
    expect(await second.exited).toBe(1);
    for (const [name, pid] of orphans) {
      expect(second.output).toContain(
        `port ${env[portVariable(name)]} (${name}) is held by ${name} (pid ${pid}), left running by an earlier run of this checkout that was killed: npm start -- --stop-orphan stops it`,
      );
    }
    expect(alive(orphanBroker!)).toBe(true);

    // Stopped on request, and a fresh broker started in place of the orphaned one.
    // Each later run on topics of its own: the consumer groups of a killed run keep their members until the
    // session timeout (30 s), which would only slow the test down.
    const third = new Launcher({ ...env, TOPIC_PREFIX: `${uniqueName('lb')}.` }, ['--stop-orphan']);
    await third.waitForOutput('Switchyard is ready', 120000);
    for (const [name, pid] of orphans) expect(third.output).toContain(`stopping ${name} (pid ${pid}) on port ${env[portVariable(name)]}`);
    expect(third.output).toContain(`found the Kafka broker (pid ${orphanBroker}) left running by npm start (pid ${first.pid}, started `);
    expect(third.output).toContain('stopped it and started it afresh');
    for (const pid of [orphanBroker!, ...orphans.values()]) expect(alive(pid), `pid ${pid} still running`).toBe(false);
    const [freshBroker] = brokerPids(port);
    expect(freshBroker).not.toBe(orphanBroker);

    // Only the broker orphaned this time: the next start reuses it and stops it when it ends.
    const thirdChildren = children(third.pid);
    killWhenDone([freshBroker!, ...thirdChildren.values()]);
    third.signal('SIGKILL');
    await third.exited;
    for (const pid of thirdChildren.values()) process.kill(pid, 'SIGKILL');
    await waitFor(() => componentHolders(env).size === 0, { timeoutMs: 10000, what: 'the killed services to let go of their ports' });
    // A database of its own too: the killed sync worker's registration holds the first one for its lease (20 s)
    // against a worker on other topics.
    const fourthDatabase = withDatabase(database.url, uniqueName('sy_t_'));
    onTestFinished(() => dropDatabase(fourthDatabase));
    const fourth = new Launcher({ ...env, TOPIC_PREFIX: `${uniqueName('lb')}.`, DATABASE_URL: fourthDatabase });
    await fourth.waitForOutput('Switchyard is ready', 120000);
    expect(fourth.output).toContain(`found the Kafka broker (pid ${freshBroker}) left running by npm start (pid ${third.pid}`);
    expect(fourth.output).toContain('reusing it; this run stops it');
    expect(brokerPids(port)).toEqual([freshBroker]);
    killWhenDone(children(fourth.pid).values());
    fourth.signal('SIGTERM');
    expect(await fourth.exited).toBe(0);
    expect(alive(freshBroker!)).toBe(false);
  });
});
