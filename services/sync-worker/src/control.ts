import {
  authContextOf,
  childTraceparent,
  commandResultType,
  type commandSchemas,
  createEvent,
  topics,
  type CommandStatus,
  type Envelope,
  type TopicEventInput,
} from '@switchyard/events';
import { EventConsumer, type EventProducer, type Kafka, type KafkaError, type TopicNames } from '@switchyard/kafka';
import type { Logger } from '@switchyard/service-runtime';
import type pg from 'pg';
import type { z } from 'zod';
import { SyncError } from './errors.js';
import type { PositionPublisher } from './position-publisher.js';
import { projections } from './projections/index.js';
import { rebuildProjection, type RebuildReport } from './rebuild.js';
import type { RetryPolicy } from './retry.js';

type RebuildCommand = z.output<(typeof commandSchemas)['switchyard.projection.rebuild']>;

export interface RebuildCommandsOptions {
  readonly kafka: Kafka;
  readonly names: TopicNames;
  readonly pool: pg.Pool;
  readonly producer: Pick<EventProducer, 'send'>;
  /** Publishes the live positions after a rebuild's swap. */
  readonly positions: Pick<PositionPublisher, 'publish'>;
  readonly groupId: string;
  readonly logger: Logger;
  readonly retry: RetryPolicy;
  readonly sessionTimeoutMs: number;
  readonly onFatal: (error: KafkaError) => void;
}

function isRebuild(event: Envelope): event is RebuildCommand {
  return event.type === 'switchyard.projection.rebuild';
}

/**
 * Carries out `switchyard.projection.rebuild` commands from the commands topic (its own consumer group; every other
 * command type belongs to another service and is skipped). Reports `accepted`, then `succeeded` or `failed`, on the
 * command-results topic, each repeating the command's Auth Context. A command redelivered after a crash is recognised
 * by its id and not rebuilt twice.
 */
export class RebuildCommands {
  private readonly options: RebuildCommandsOptions;
  private readonly consumer: EventConsumer<typeof topics.commands>;

  constructor(options: RebuildCommandsOptions) {
    this.options = options;
    this.consumer = new EventConsumer(options.kafka, options.names, {
      groupId: options.groupId,
      topics: [topics.commands],
      fromBeginning: true,
      commitToKafka: true,
      sessionTimeoutMs: options.sessionTimeoutMs,
      logger: options.logger,
      onFatal: options.onFatal,
    });
  }

  get isJoined(): boolean {
    return this.consumer.isJoined;
  }

  async start(): Promise<void> {
    await this.consumer.start(async (batch) => {
      for (const record of batch.records) {
        if (batch.isStale()) return;
        if (record.decoded.ok && isRebuild(record.decoded.event)) {
          await this.run(record.decoded.event, () => batch.heartbeat().catch(() => undefined));
        }
        batch.markDone((BigInt(record.offset) + 1n).toString());
      }
      batch.markDone();
    });
  }

  async stop(): Promise<void> {
    await this.consumer.stop();
  }

  private async report(command: RebuildCommand, status: CommandStatus, extra: { error?: SyncError; report?: RebuildReport }) {
    const data: Record<string, unknown> = { commandId: command.id, commandType: command.type, status };
    if (extra.report) data['durationMs'] = Math.round(extra.report.durationMs);
    if (extra.error) data['error'] = { code: extra.error.code, message: extra.error.message, retriable: extra.error.retriable };
    // The producer validates the event against the catalog before it leaves.
    const result = createEvent({
      type: commandResultType(status),
      source: 'switchyard/sync-worker',
      subject: command.id,
      correlationId: command.correlationid,
      causationId: command.id,
      traceparent: childTraceparent(command.traceparent),
      // Who asked for the rebuild, repeated so the audit trail names them on every result.
      auth: authContextOf(command),
      data,
    }) as TopicEventInput<typeof topics.commandResults>;
    await this.options.producer.send(topics.commandResults, [result]);
  }

  private async run(command: RebuildCommand, heartbeat: () => Promise<unknown>): Promise<void> {
    const { projection } = command.data.input;
    const { logger } = this.options;
    await this.report(command, 'accepted', {});
    logger.info({ commandId: command.id, projection }, 'rebuild requested');
    try {
      const report = await rebuildProjection({
        pool: this.options.pool,
        kafka: this.options.kafka,
        names: this.options.names,
        logger,
        projection: projections[projection],
        retry: this.options.retry,
        commandId: command.id,
        positions: this.options.positions,
        onProgress: ({ events }) => {
          logger.info({ projection, events }, 'rebuild progress');
          void heartbeat();
        },
      });
      if (report.previously?.status === 'failed') {
        // A redelivered command that failed before: repeat its outcome, do not rebuild again.
        await this.report(command, 'failed', {
          error: new SyncError('SYNC_REBUILD_FAILED', report.previously.error ?? 'the rebuild failed'),
        });
        return;
      }
      logger.info({ ...report }, report.previously ? 'rebuild already done for this command' : 'rebuild finished');
      await this.report(command, 'succeeded', { report });
    } catch (error) {
      const failure =
        error instanceof SyncError
          ? error
          : new SyncError('SYNC_REBUILD_FAILED', (error as Error).message, { cause: error });
      logger.error({ err: failure, projection }, 'rebuild failed');
      await this.report(command, 'failed', { error: failure });
    }
  }
}
