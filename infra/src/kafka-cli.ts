#!/usr/bin/env node
import { localKafkaStatus, releaseLocalKafka, startLocalKafka, stopLocalKafka } from './kafka-broker.js';

const usage = `usage: switchyard-kafka start|stop|stop-if-unused|status [--name local] [--nodes 1|3] [--port 9092]

  start            start the named local cluster (kept running until stopped: no release stops it)
  stop             stop it, whoever uses it
  stop-if-unused   stop it when it was started to stop when unused and no live process holds a lease on it
  status           running nodes, the processes holding leases, and whether it stops when unused`;

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const command = process.argv[2];
const name = option('name', 'local');
try {
  if (command === 'start') {
    const kafka = await startLocalKafka({ name, nodes: Number(option('nodes', '1')), port: Number(option('port', '9092')) });
    console.log(`${kafka.started ? 'started' : 'already running'}: ${kafka.brokers} (logs ${kafka.nodes.map((node) => node.logFile).join(', ')})`);
  } else if (command === 'stop') {
    console.log((await stopLocalKafka(name)) ? 'stopped' : 'not running');
  } else if (command === 'stop-if-unused') {
    const released = await releaseLocalKafka(name);
    console.log(
      released.stopped
        ? 'stopped'
        : released.users.length > 0
          ? `in use by ${released.users.map((user) => `${user.what} (pid ${user.pid})`).join(', ')}; left running`
          : 'not stopped: not running, or started with start (stop stops it)',
    );
  } else if (command === 'status') {
    const status = localKafkaStatus(name);
    const running = status.nodes.filter((node) => node.pid !== undefined);
    const users = status.users.map((user) => `${user.what} (pid ${user.pid})`).join(', ');
    console.log(
      status.running
        ? `running (${running.map((node) => `node ${node.id} pid ${node.pid} on ${node.port}`).join(', ')}; ${running.length} of ${status.nodes.length} nodes)` +
            `; ${users ? `used by ${users}` : 'no lease held'}; ${status.stopsWhenUnused ? 'stops when unused' : 'runs until stopped'}`
        : 'not running',
    );
  } else {
    console.error(usage);
    process.exitCode = 2;
  }
} catch (error) {
  console.error((error as Error).message);
  process.exitCode = 1;
}
