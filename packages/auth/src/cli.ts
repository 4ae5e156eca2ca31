#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { DEFAULT_TOPIC_PREFIX, topics } from '@switchyard/events';
import { createKafka, EventProducer, KafkaAdmin, TopicNames } from '@switchyard/kafka';
import { createLogger } from '@switchyard/service-runtime';
import { AuthError } from './errors.js';
import { KeyManager, keyView, type KeyView } from './manager.js';
import { serviceAuth } from './service.js';

const USAGE = `usage: switchyard-keys <command>
  create --name <name> --scope <scope> [--scope <scope> …] [--rate <commands/s> --burst <n>]
                          create a key; the key is printed once, only its hash is kept
  list [--json]           every key: id, name, scopes, limits, created, revoked
  revoke <key id>         revoke a key everywhere (open streams are closed within a second)
Scopes: admin, commands:send:<type pattern>, commands:read, commands:read:all, stream:<type pattern>, health:read
(docs/security.md). Kafka from KAFKA_BROKERS (default 127.0.0.1:9092) and TOPIC_PREFIX (default ${DEFAULT_TOPIC_PREFIX}).`;

function fail(message: string, code = 2): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

const { values, positionals } = (() => {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        name: { type: 'string' },
        scope: { type: 'string', multiple: true },
        rate: { type: 'string' },
        burst: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    return fail(`${(error as Error).message}\n${USAGE}`);
  }
})();
const [command, argument] = positionals;
if (values.help === true) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (command === undefined || !['create', 'list', 'revoke'].includes(command)) fail(USAGE);
if (command === 'revoke' && argument === undefined) fail('revoke: give the key id (sy_<16 hex>)');

const brokers = (process.env['KAFKA_BROKERS'] ?? '127.0.0.1:9092').split(',').map((broker) => broker.trim()).filter(Boolean);
const names = new TopicNames(process.env['TOPIC_PREFIX'] ?? DEFAULT_TOPIC_PREFIX);
const logger = createLogger({ service: 'switchyard-keys', level: 'error' });
const kafka = createKafka({ brokers, clientId: 'switchyard-keys', logger });
const admin = new KafkaAdmin(kafka, names, logger);
const producer = new EventProducer(kafka, names);
const auth = serviceAuth({ kafka, names, admin, service: 'cli', logger, onFatal: (error) => fail(`reading the api-keys topic failed: ${error.message}`, 1) });

function row(view: KeyView): string {
  const limits = view.limits === undefined ? 'default' : `${view.limits.commandsPerSecond}/s burst ${view.limits.burst}`;
  const state = view.revokedAt === undefined ? 'active' : `revoked ${view.revokedAt}`;
  return `${view.keyId}  ${JSON.stringify(view.name)}  [${view.scopes.join(' ')}]  limits ${limits}  created ${view.createdAt} by ${view.createdBy}  ${state}`;
}

try {
  await admin.connect();
  await admin.provision([topics.apiKeys]);
  await auth.start();
  await auth.store.loaded;
  const manager = new KeyManager({ producer, store: auth.store, source: 'switchyard/keys-cli' });
  if (command === 'create') {
    if (values.name === undefined || values.scope === undefined) fail('create: --name and at least one --scope are required');
    const limits =
      values.rate === undefined && values.burst === undefined
        ? undefined
        : { commandsPerSecond: Number(values.rate), burst: Number(values.burst) };
    await producer.connect();
    const created = await manager.create({ name: values.name, scopes: values.scope, ...(limits === undefined ? {} : { limits }) }, 'cli');
    process.stdout.write(values.json === true ? `${JSON.stringify({ key: created.key, ...created.view })}\n` : `${created.key}\n${row(created.view)}\nThe key is shown only now; keep it somewhere safe.\n`);
  } else if (command === 'list') {
    const views = auth.store.all().map((key) => keyView(key.record));
    process.stdout.write(values.json === true ? `${JSON.stringify(views)}\n` : `${views.map(row).join('\n')}${views.length > 0 ? '\n' : ''}`);
  } else {
    await producer.connect();
    process.stdout.write(`${row(await manager.revoke(argument!, 'cli'))}\n`);
  }
} catch (error) {
  if (error instanceof AuthError) process.exitCode = 2;
  else process.exitCode = 1;
  process.stderr.write(`${command}: ${(error as Error).message}\n`);
} finally {
  await auth.stop().catch(() => undefined);
  await producer.disconnect().catch(() => undefined);
  await admin.disconnect().catch(() => undefined);
}
