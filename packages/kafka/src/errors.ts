import { defineErrorCodes, errorClass } from '@switchyard/events';

export const kafkaErrors = defineErrorCodes('KFK', {
  KFK_INVALID_EVENT: {
    retriable: false,
    meaning: 'An event about to be produced does not match its schema in the topic catalog.',
    fix: 'A bug in the producing service; the details name the field.',
  },
  KFK_PRODUCE_FAILED: {
    retriable: true,
    meaning: 'The broker did not acknowledge a produce request after the client retried.',
    fix: 'Check that the brokers are reachable and the topic exists; the request can be repeated.',
  },
  KFK_UNAVAILABLE: {
    retriable: true,
    meaning: 'The Kafka cluster did not answer an admin request in time.',
    fix: 'Check KAFKA_BROKERS and that the brokers are up.',
  },
  KFK_PROVISION_FAILED: {
    retriable: true,
    meaning: 'Creating or growing a topic from the catalog failed.',
    fix: 'Check broker permissions (CreateTopics, AlterConfigs) and that the cluster is healthy.',
  },
  KFK_CONSUMER_CRASHED: {
    retriable: false,
    meaning: 'The consumer stopped on an error it cannot restart from.',
    fix: 'The service exits so its supervisor restarts it; the log holds the cause.',
  },
  KFK_UNKNOWN_TOPIC: {
    retriable: false,
    meaning: 'A record arrived from a topic that is not in the catalog under this prefix.',
    fix: 'Check TOPIC_PREFIX; services of one deployment must share it.',
  },
});
export type KafkaErrorCode = keyof typeof kafkaErrors;

export const KafkaError = errorClass('KafkaError', kafkaErrors);
export type KafkaError = InstanceType<typeof KafkaError>;
