export { KafkaAdmin, type PartitionOffsets, type ProvisionResult } from './admin.js';
export { createKafka, silentKafkaLogger, type Kafka, type KafkaClientOptions, type KafkaLogger } from './client.js';
export {
  EventConsumer,
  type AssignedPartitions,
  type BatchHandler,
  type ConsumedRecord,
  type EventConsumerOptions,
  type PartitionBatch,
} from './consumer.js';
export { DeadLetters, type DeadLetterReason } from './dead-letters.js';
export { KafkaError, kafkaErrors, type KafkaErrorCode } from './errors.js';
export { EventProducer, type Acknowledged, type EventProducerOptions, type OutgoingBatch, type RawRecord } from './producer.js';
export { TopicNames } from './topic-names.js';
