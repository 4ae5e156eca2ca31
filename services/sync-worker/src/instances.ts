import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { isSwitchyardError } from '@switchyard/events';
import type { KafkaAdmin, KafkaLogger, TopicNames } from '@switchyard/kafka';
import type pg from 'pg';
import { SyncError } from './errors.js';
import { projections } from './projections/index.js';

/** How often a running process refreshes its row's `seen_at`. */
export const INSTANCE_HEARTBEAT_MS = 5000;
/** A row not refreshed for this long (four heartbeats) belongs to a process that is gone, and is deleted. */
export const INSTANCE_LEASE_MS = 20000;

// Any constant works; this one spells "syncinst" so it is recognisable in pg_locks.
const INSTANCES_LOCK = 0x73796e63696e7374n;

/** What makes two processes one deployment: the Kafka cluster their offsets count in, and their topics. */
export interface Deployment {
  readonly cluster: string;
  readonly prefix: string;
  /** Recorded for whoever reads the table; workers of one deployment may use different groups. */
  readonly groupId: string;
}

/** A position of another Kafka cluster this process took over at registration. */
export interface AdoptedPosition {
  readonly projection: string;
  readonly topic: string;
  readonly partition: number;
  /** The cluster it was read from and where it stood there. */
  readonly fromCluster: string;
  readonly fromOffset: string;
  /** Where it now stands in this cluster's log (the partition's start), or null when this cluster has no such partition. */
  readonly offset: string | null;
}

export interface InstanceRegistrationOptions {
  readonly pool: pg.Pool;
  /** This process's deployment, but for its Kafka cluster, which `start` is told. */
  readonly deployment: Omit<Deployment, 'cluster'>;
  readonly names: TopicNames;
  /** Reads the log starts of the topics whose positions are adopted. */
  readonly admin: Pick<KafkaAdmin, 'listTopics' | 'partitionOffsets'>;
  readonly logger: KafkaLogger;
  /** Told what was adopted, at start and whenever the registration is made again. */
  readonly onAdopted?: (adopted: readonly AdoptedPosition[]) => void;
  /** Called when another deployment took the database over while this process's row had lapsed. */
  readonly onLost: (error: SyncError) => void;
}

/** The full names of the topics this deployment's projections read. */
export function deploymentTopics(names: TopicNames): string[] {
  return [...new Set(Object.values(projections).flatMap((projection) => projection.topics.map((spec) => names.name(spec))))];
}

interface OtherInstance {
  host: string;
  pid: number;
  kafka_cluster: string;
  topic_prefix: string;
  group_id: string;
  seen_ms_ago: string;
}

/**
 * This process's row in `sync_instances`, which keeps two deployments from writing into one database.
 *
 * Positions in `sync_offsets` count in one Kafka cluster's log and the tables hold what one set of topics said: a
 * second deployment (another cluster, or another topic prefix) on the same database would reset the first one's
 * positions to its own log, fold its events into the same tables, and block the first one's rebuilds. So at start,
 * in one transaction under an advisory lock, rows that have not been seen for the lease are deleted; a live row of
 * another deployment refuses the start (SYNC_DATABASE_IN_USE); otherwise this process registers, and positions
 * of another Kafka cluster left behind by a deployment that is gone are adopted: set to the start of this
 * cluster's log, which the live worker then reads from (it commits nothing to Kafka, so it starts a partition at
 * the log's start and continues from the stored position). Workers of the same deployment all register and run.
 *
 * While running the row is refreshed every INSTANCE_HEARTBEAT_MS. Should it lapse anyway (Postgres out of reach for
 * longer than the lease) it is registered again under the same check, and another deployment found by then is
 * reported through `onLost`. The row is deleted on stop.
 */
export class InstanceRegistration {
  readonly id = randomBytes(8).toString('hex');
  private readonly options: InstanceRegistrationOptions;
  private deployment: Deployment | undefined;
  private timer: NodeJS.Timeout | undefined;
  private beat: Promise<void> = Promise.resolve();
  private failing = false;

  constructor(options: InstanceRegistrationOptions) {
    this.options = options;
  }

  /** Registers or refuses (SYNC_DATABASE_IN_USE); then heartbeats until `stop`. */
  async start(cluster: string): Promise<readonly AdoptedPosition[]> {
    this.deployment = { ...this.options.deployment, cluster };
    const adopted = await this.register(this.deployment);
    this.timer = setInterval(() => {
      this.beat = this.beat.then(() => this.heartbeat());
    }, INSTANCE_HEARTBEAT_MS);
    this.timer.unref();
    return adopted;
  }

  /** Stops the heartbeat and deletes the row (a row left behind lapses after INSTANCE_LEASE_MS). */
  async stop(): Promise<void> {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beat;
    try {
      await this.options.pool.query('DELETE FROM sync_instances WHERE instance_id = $1', [this.id]);
    } catch (error) {
      this.options.logger.warn({ err: error, instance: this.id }, `could not delete this process from sync_instances; its row lapses after ${INSTANCE_LEASE_MS} ms`);
    }
  }

  private async heartbeat(): Promise<void> {
    if (this.timer === undefined) return;
    try {
      const { rowCount } = await this.options.pool.query('UPDATE sync_instances SET seen_at = now() WHERE instance_id = $1', [this.id]);
      if (rowCount === 0) {
        this.options.logger.warn({ instance: this.id, leaseMs: INSTANCE_LEASE_MS }, 'this process was not seen in sync_instances for the lease and its row was deleted; registering again');
        if (this.deployment !== undefined) await this.register(this.deployment);
      }
      if (this.failing) this.options.logger.info({ instance: this.id }, 'sync_instances heartbeat recovered');
      this.failing = false;
    } catch (error) {
      if (isSwitchyardError(error) && error.code === 'SYNC_DATABASE_IN_USE') {
        clearInterval(this.timer);
        this.timer = undefined;
        this.options.onLost(error as SyncError);
        return;
      }
      if (!this.failing) {
        this.options.logger.warn({ err: error, instance: this.id, leaseMs: INSTANCE_LEASE_MS }, 'could not refresh this process in sync_instances; retrying');
      }
      this.failing = true;
    }
  }

  private async register(deployment: Deployment): Promise<readonly AdoptedPosition[]> {
    const { pool } = this.options;
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [INSTANCES_LOCK.toString()]);
      await client.query("DELETE FROM sync_instances WHERE seen_at < now() - $1 * interval '1 millisecond'", [INSTANCE_LEASE_MS]);
      const { rows } = await client.query<OtherInstance & { database: string }>(
        `SELECT host, pid, kafka_cluster, topic_prefix, group_id, round(extract(epoch FROM now() - seen_at) * 1000) AS seen_ms_ago,
                current_database() AS database
           FROM sync_instances WHERE kafka_cluster <> $1 OR topic_prefix <> $2 ORDER BY seen_at DESC LIMIT 1`,
        [deployment.cluster, deployment.prefix],
      );
      const other = rows[0];
      if (other !== undefined) throw inUse(other.database, other, deployment);
      await client.query(
        `INSERT INTO sync_instances (instance_id, kafka_cluster, topic_prefix, group_id, host, pid) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (instance_id) DO UPDATE SET seen_at = now()`,
        [this.id, deployment.cluster, deployment.prefix, deployment.groupId, hostname(), process.pid],
      );
      const adopted = await this.adopt(client, deployment.cluster);
      await client.query('COMMIT');
      if (adopted.length > 0) {
        const fromClusters = [...new Set(adopted.map((position) => position.fromCluster))];
        this.options.logger.warn(
          {
            adopted: adopted.length,
            fromClusters,
            cluster: deployment.cluster,
            projections: [...new Set(adopted.map((position) => position.projection))],
          },
          `sync_offsets held ${adopted.length} position(s) read from Kafka cluster ${fromClusters.join(', ')}, whose deployment is not running: adopted them; this cluster's log is read again from its start (the version guard keeps newer rows)`,
        );
        this.options.onAdopted?.(adopted);
      }
      return adopted;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /** Inside the registration's transaction: positions of another cluster on this deployment's topics. */
  private async adopt(client: pg.ClientBase, cluster: string): Promise<AdoptedPosition[]> {
    const { admin } = this.options;
    const topics = deploymentTopics(this.options.names);
    const { rows } = await client.query<{ projection: string; topic: string; partition: number; next_offset: string; kafka_cluster: string }>(
      `SELECT projection, topic, partition, next_offset, kafka_cluster FROM sync_offsets
        WHERE kafka_cluster <> $1 AND topic = ANY($2::text[]) ORDER BY projection, topic, partition FOR UPDATE`,
      [cluster, topics],
    );
    if (rows.length === 0) return [];
    const existing = new Set(await admin.listTopics());
    const starts = new Map<string, string>();
    for (const topic of new Set(rows.map((row) => row.topic))) {
      if (!existing.has(topic)) continue;
      for (const { partition, low } of await admin.partitionOffsets(topic)) starts.set(`${topic}/${partition}`, low);
    }
    const adopted: AdoptedPosition[] = [];
    for (const row of rows) {
      const start = starts.get(`${row.topic}/${row.partition}`) ?? null;
      const where = [row.projection, row.topic, row.partition];
      if (start === null) {
        // This cluster has no such partition: the position counts in nothing here.
        await client.query('DELETE FROM sync_offsets WHERE projection = $1 AND topic = $2 AND partition = $3', where);
      } else {
        await client.query(
          'UPDATE sync_offsets SET next_offset = $4, kafka_cluster = $5, updated_at = now() WHERE projection = $1 AND topic = $2 AND partition = $3',
          [...where, start, cluster],
        );
      }
      adopted.push({
        projection: row.projection,
        topic: row.topic,
        partition: row.partition,
        fromCluster: row.kafka_cluster,
        fromOffset: row.next_offset,
        offset: start,
      });
    }
    return adopted;
  }
}

function inUse(database: string, other: OtherInstance, deployment: Deployment): SyncError {
  const seconds = Math.max(0, Math.round(Number(other.seen_ms_ago) / 1000));
  return new SyncError(
    'SYNC_DATABASE_IN_USE',
    `database "${database}" is in use by another deployment: the sync worker on ${other.host} (pid ${other.pid}) with Kafka cluster ` +
      `${other.kafka_cluster} and topic prefix "${other.topic_prefix}" was seen ${seconds} s ago, and this one has Kafka cluster ` +
      `${deployment.cluster} and topic prefix "${deployment.prefix}"; their positions and tables would mix. Give this deployment its ` +
      `own database with DATABASE_URL, or stop the other (its row in sync_instances lapses ${INSTANCE_LEASE_MS / 1000} s after it stops).`,
    {
      details: {
        database,
        otherCluster: other.kafka_cluster,
        otherPrefix: other.topic_prefix,
        otherGroupId: other.group_id,
        otherHost: other.host,
        otherPid: other.pid,
        seenSecondsAgo: seconds,
      },
    },
  );
}
