import { hostname } from 'node:os';
import { serviceAuth } from '@switchyard/auth';
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

const auth = serviceAuth({ kafka, names, admin, service: SERVICE, logger, onFatal: (error) => lifecycle.fatal(error, 'api keys consumer stopped') });

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
    auth.readiness,
    { name: 'consumer', check: () => live.check() },
  ],
  auth,
  stream: streamOptions(config, hub),
});

// Clients first (they get 1001 while the process can still say so), then Kafka, then the HTTP port.
lifecycle.onStop('clients', () => hub.closeAll());
lifecycle.onStop('consumer', () => live.stop());
lifecycle.onStop('consumer group', () => live.deleteGroup());
lifecycle.onStop('api keys', () => auth.stop());
lifecycle.onStop('http', () => app.close());
lifecycle.onStop('admin', () => admin.disconnect());

try {
  // Listening first lets /healthz answer while Kafka is slow to come up; /readyz says when events flow. Until the
  // api keys are read, upgrades are refused with 503 AUTH_KEYS_UNAVAILABLE.
  await app.listen({ port: config.PORT, host: config.HOST });
  hub.start();
  await admin.connect();
  await admin.provision();
  await auth.start();
  await auth.store.loaded;
  await live.start();
  logger.info({ groupId: live.groupId, port: config.PORT }, 'streaming');
} catch (error) {
  lifecycle.fatal(error, 'start failed');
}
