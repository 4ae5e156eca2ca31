import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kafka, KafkaAdmin, KafkaError, TopicNames } from '@switchyard/kafka';
import type { FastifyInstance, Logger, ReadinessCheck } from '@switchyard/service-runtime';
import { Authenticator } from './authenticate.js';
import { guard } from './guard.js';
import { KeyStore } from './store.js';

export interface ServiceAuthDeps {
  readonly kafka: Kafka;
  readonly names: TopicNames;
  readonly admin: Pick<KafkaAdmin, 'partitionOffsets' | 'deleteGroups'>;
  readonly service: string;
  readonly logger: Logger;
  readonly onFatal: (error: KafkaError) => void;
}

/** What a service needs to check keys: the store, the authenticator over it, and the guard for its HTTP app. */
export interface ServiceAuth {
  readonly store: KeyStore;
  readonly authenticator: Authenticator;
  /** Pass as `guard` to createServiceApp. */
  readonly guard: (app: FastifyInstance) => void;
  readonly readiness: ReadinessCheck;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function serviceAuth(deps: ServiceAuthDeps): ServiceAuth {
  const instance = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const store = new KeyStore({
    kafka: deps.kafka,
    names: deps.names,
    admin: deps.admin,
    groupId: `${deps.names.prefix}keys.${deps.service}.${instance}`,
    logger: deps.logger,
    onFatal: deps.onFatal,
  });
  const authenticator = new Authenticator(store);
  return {
    store,
    authenticator,
    guard: (app) => guard(app, authenticator),
    readiness: store.readinessCheck(),
    start: () => store.start(),
    stop: () => store.stop(),
  };
}
