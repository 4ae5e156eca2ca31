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
import { SyncError, syncErrors } from './errors.js';
import type { PositionPublisher } from './position-publisher.js';
import { projections } from './projections/index.js';
import { rebuildProjection, type RebuildReport } from './rebuild.js';
import type { RetryPolicy } from './retry.js';

type SyncErrorCode = keyof typeof syncErrors;
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
  /** SYNC_REBUILD_SWAP_TIMEOUT_MS */
  readonly swapTimeoutMs: number;
  /** SYNC_MAX_BYTES_PER_PARTITION, for the rebuild's own consumer too. */
  readonly maxBytesPerPartition: number;
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
 *
 * `stop()` interrupts a rebuild in progress: it ends before the swap, the command is answered `failed` with
 * SYNC_REBUILD_INTERRUPTED, and only then is the command's offset committed. The interrupted command is finished: a
 * redelivery repeats that answer and rebuilds nothing, so the next start is clean; send the command again to rebuild.
 */
export class RebuildCommands {
  private readonly options: RebuildCommandsOptions;
  private readonly consumer: EventConsumer<typeof topics.commands>;
  private readonly stopping = new AbortController();

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
        // Stopping: what is not started stays unmarked, for the next start.
        if (batch.isStale() || this.stopping.signal.aborted) return;
        if (record.decoded.ok && isRebuild(record.decoded.event)) {
          await this.run(record.decoded.event, () => batch.heartbeat().catch(() => undefined));
        }
        batch.markDone((BigInt(record.offset) + 1n).toString());
      }
      batch.markDone();
    });
  }

  /** Interrupts the rebuild in progress (answered before its offset is committed), then leaves the group. */
  async stop(): Promise<void> {
    this.stopping.abort('the sync worker is shutting down');
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
        swapTimeoutMs: this.options.swapTimeoutMs,
        maxBytesPerPartition: this.options.maxBytesPerPartition,
        signal: this.stopping.signal,
        commandId: command.id,
        positions: this.options.positions,
        onProgress: ({ events }) => {
          logger.info({ projection, events }, 'rebuild progress');
          void heartbeat();
        },
      });
      if (report.previously?.status === 'failed') {
        // A redelivered command that failed (or was interrupted) before: repeat its outcome, do not rebuild again.
        const { error, errorCode } = report.previously;
        const code = errorCode !== null && errorCode in syncErrors ? (errorCode as SyncErrorCode) : 'SYNC_REBUILD_FAILED';
        logger.info({ commandId: command.id, projection, code }, 'rebuild command seen before and it failed; repeating its outcome');
        await this.report(command, 'failed', { error: new SyncError(code, error ?? 'the rebuild failed') });
        return;
      }
      logger.info({ ...report }, report.previously ? 'rebuild already done for this command' : 'rebuild finished');
      await this.report(command, 'succeeded', { report });
    } catch (error) {
      const failure =
        error instanceof SyncError
          ? error
          : new SyncError('SYNC_REBUILD_FAILED', (error as Error).message, { cause: error });
      if (failure.code === 'SYNC_REBUILD_INTERRUPTED') {
        logger.warn({ err: failure, commandId: command.id, projection }, 'rebuild interrupted; the command is answered failed, send it again to rebuild');
      } else {
        logger.error({ err: failure, commandId: command.id, projection }, 'rebuild failed');
      }
      await this.report(command, 'failed', { error: failure });
    }
  }
}
