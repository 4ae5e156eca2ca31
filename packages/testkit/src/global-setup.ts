import type { TestProject } from 'vitest/node';
import { resolveInfrastructure } from './infrastructure.js';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
    postgresUrl: string;
  }
}

/** vitest globalSetup: resolves Kafka and Postgres once per run and hands their addresses to every test file. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const infra = await resolveInfrastructure();
  console.log(`[testkit] Kafka: ${infra.kafkaBrokers} (${infra.kafkaSource}); Postgres: ${infra.postgresSource}`);
  project.provide('kafkaBrokers', infra.kafkaBrokers);
  project.provide('postgresUrl', infra.postgresUrl);
  return () => infra.teardown();
}
