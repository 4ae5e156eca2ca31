#!/usr/bin/env node
import { localBrokerStatus, startLocalBroker, stopLocalBroker } from './kafka-broker.js';

const usage = 'usage: switchyard-kafka start|stop|status [--name local] [--port 9092]';

function option(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index > 0 ? (process.argv[index + 1] ?? fallback) : fallback;
}

const command = process.argv[2];
const name = option('name', 'local');
try {
  if (command === 'start') {
    const broker = await startLocalBroker({ name, port: Number(option('port', '9092')) });
    console.log(`${broker.started ? 'started' : 'already running'}: ${broker.brokers} (log ${broker.logFile})`);
  } else if (command === 'stop') {
    console.log((await stopLocalBroker(name)) ? 'stopped' : 'not running');
  } else if (command === 'status') {
    const status = localBrokerStatus(name);
    console.log(status.running ? `running (pid ${status.pid}, log ${status.logFile})` : 'not running');
  } else {
    console.error(usage);
    process.exitCode = 2;
  }
} catch (error) {
  console.error((error as Error).message);
  process.exitCode = 1;
}
