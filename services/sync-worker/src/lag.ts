import type { TopicSpec } from '@switchyard/events';
import type { KafkaAdmin, TopicNames } from '@switchyard/kafka';
import type { Registry } from '@switchyard/service-runtime';
import type pg from 'pg';
import { Gauge } from 'prom-client';
import { readOffsets } from './offsets.js';
import type { Projection } from './projections/index.js';

/**
 * `switchyard_sync_lag_records{projection,topic,partition}`: records in Kafka not yet applied, computed at each
 * scrape from the positions in Postgres and the partitions' high watermarks (Kafka's own lag tools see nothing:
 * the worker commits no offsets there).
 */
export function registerLagMetric(deps: {
  registry: Registry;
  pool: pg.Pool;
  admin: Pick<KafkaAdmin, 'partitionOffsets'>;
  names: TopicNames;
  projections: readonly Projection[];
}): void {
  const topicsOf = new Map<string, TopicSpec[]>(deps.projections.map((projection) => [projection.name, [...projection.topics]]));
  new Gauge({
    name: 'switchyard_sync_lag_records',
    help: 'Records in Kafka not yet applied to the projection, per partition',
    labelNames: ['projection', 'topic', 'partition'],
    registers: [deps.registry],
    async collect() {
      this.reset();
      try {
        const stored = await readOffsets(deps.pool);
        for (const [projection, specs] of topicsOf) {
          for (const spec of specs) {
            const topic = deps.names.name(spec);
            for (const { partition, high } of await deps.admin.partitionOffsets(topic)) {
              const position = stored.find((row) => row.projection === projection && row.topic === topic && row.partition === partition);
              const lag = BigInt(high) - (position?.nextOffset ?? 0n);
              this.set({ projection, topic, partition: String(partition) }, Number(lag > 0n ? lag : 0n));
            }
          }
        }
      } catch {
        // A scrape during an outage reports no lag series rather than failing; /readyz says what is wrong.
      }
    },
  });
}
