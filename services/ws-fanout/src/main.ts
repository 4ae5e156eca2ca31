import { hostname } from 'node:os';
import { createKafka, KafkaAdmin, TopicNames } from '@switchyard/kafka';
import { bootService } from '@switchyard/service-runtime';
import { buildApp, streamOptions } from './app.js';
import { loadWsFanoutConfig } from './config.js';
import { Hub, hubOptions } from './hub.js';
import { fanoutGroupId, instanceId, LiveEvents } from './live.js';

const SERVICE = 'ws-fanout';

const instance = instanceId(hostname(), process.pid);
const { config, logger, lifecycle, registry } = bootService(SERVICE, () => loadWsFanoutConfig(process.env), { instance });
const names = new TopicNames(config.TOPIC_PREFIX);
const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: `${SERVICE}-${instance}`, logger });
const admin = new KafkaAdmin(kafka, names, logger);

const hub = new Hub(hubOptions(config, logger, registry));

const live = new LiveEvents({
  kafka,
  names,
  admin,
  groupId: fanoutGroupId(config.TOPIC_PREFIX, instance),
  logger,
  registry,
  onEvent: (event, receivedAt) => hub.publish(event, receivedAt),
  onFatal: (error) => lifecycle.fatal(error, 'consumer stopped'),
});

const app = buildApp({
  logger,
  registry,
  isStopping: () => lifecycle.isStopping,
  checks: [
    ...admin.readinessChecks(),
    { name: 'consumer', check: () => live.check() },
  ],
  stream: streamOptions(config, hub),
});

// Clients first (they get 1001 while the process can still say so), then Kafka, then the HTTP port.
lifecycle.onStop('clients', () => hub.closeAll());
lifecycle.onStop('consumer', () => live.stop());
lifecycle.onStop('consumer group', () => live.deleteGroup());
lifecycle.onStop('http', () => app.close());
lifecycle.onStop('admin', () => admin.disconnect());

try {
  // Listening first lets /healthz answer while Kafka is slow to come up; /readyz says when events flow.
  await app.listen({ port: config.PORT, host: config.HOST });
  hub.start();
  await admin.connect();
  await admin.provision();
  await live.start();
  logger.info({ groupId: live.groupId, port: config.PORT }, 'streaming');
} catch (error) {
  lifecycle.fatal(error, 'start failed');
}
