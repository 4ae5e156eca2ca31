import { serviceAuth } from '@switchyard/auth';
import { createKafka, EventProducer, KafkaAdmin, TopicNames } from '@switchyard/kafka';
import { bootService } from '@switchyard/service-runtime';
import { Agent } from 'undici';
import { buildApp } from './app.js';
import { loadHealthMonitorConfig } from './config.js';
import { HealthMonitor } from './monitor.js';

const SERVICE = 'health-monitor';

const { config, logger, lifecycle, registry } = bootService(SERVICE, () => loadHealthMonitorConfig(process.env));
const names = new TopicNames(config.TOPIC_PREFIX);
const kafka = createKafka({ brokers: config.KAFKA_BROKERS, clientId: SERVICE, logger });
const admin = new KafkaAdmin(kafka, names, logger);
const producer = new EventProducer(kafka, names);
// The API keys, read from the api-keys topic, that GET /v1/health checks (health:read).
const auth = serviceAuth({ kafka, names, admin, service: SERVICE, logger, onFatal: (error) => lifecycle.fatal(error, 'api keys consumer stopped') });
const dispatcher = new Agent({ connections: 4, keepAliveTimeout: 30000 });

const monitor = new HealthMonitor({
  targets: config.HEALTH_TARGETS,
  dispatcher,
  producer,
  policy: { degradedLatencyMs: config.HEALTH_DEGRADED_LATENCY_MS, failureThreshold: config.HEALTH_FAILURE_THRESHOLD },
  intervalMs: config.HEALTH_INTERVAL_MS,
  timeoutMs: config.HEALTH_TIMEOUT_MS,
  logger,
  registry,
});

const app = buildApp({
  logger,
  monitor,
  registry,
  guard: auth.guard,
  isStopping: () => lifecycle.isStopping,
  checks: [
    ...admin.readinessChecks(producer),
    auth.readiness,
  ],
});

lifecycle.onStop('monitor', () => monitor.stop());
lifecycle.onStop('http', () => app.close());
lifecycle.onStop('api keys', () => auth.stop());
lifecycle.onStop('producer', () => producer.disconnect());
lifecycle.onStop('admin', () => admin.disconnect());
lifecycle.onStop('probes', () => dispatcher.close());

try {
  await app.listen({ port: config.PORT, host: config.HOST });
  await admin.connect();
  await admin.provision();
  await auth.start();
  await producer.connect();
  monitor.start();
  logger.info({ targets: config.HEALTH_TARGETS.map((target) => target.api) }, 'probing');
} catch (error) {
  lifecycle.fatal(error, 'start failed');
}
