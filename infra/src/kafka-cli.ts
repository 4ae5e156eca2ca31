#!/usr/bin/env node
import { localKafkaStatus, startLocalKafka, stopLocalKafka } from './kafka-broker.js';

const usage = 'usage: switchyard-kafka start|stop|status [--name local] [--nodes 1|3] [--port 9092]';

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
  } else if (command === 'status') {
    const status = localKafkaStatus(name);
    const running = status.nodes.filter((node) => node.pid !== undefined);
    console.log(
      status.running
        ? `running (${running.map((node) => `node ${node.id} pid ${node.pid} on ${node.port}`).join(', ')}; ${running.length} of ${status.nodes.length} nodes)`
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
