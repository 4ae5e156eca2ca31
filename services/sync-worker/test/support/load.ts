import { createEvent, entityVersion, type topics, type Envelope, type TopicEventInput } from '@switchyard/events';
import type { EventProducer } from '@switchyard/kafka';
import type { EntityChange } from '../../src/projections/entities.js';
import { envelopeOf } from './db.js';
import { foldModel, type ModelRow } from './model.js';

/** A small deterministic PRNG so a failing run can be replayed from its seed. */
export function prng(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 4294967296;
  };
}

/** Who the load's changes are attributed to, in turn: two API keys and none (a poll). */
const LOAD_AUTHS = [{ type: 'api_key', id: 'sy_10ad000000000001' }, { type: 'api_key', id: 'sy_10ad000000000002' }, undefined] as const;

/**
 * Entity events over `entities` keys in produce order: versions mostly rising with late (older) events, exact
 * redeliveries, deletions with and without state, attributed to API keys or to no one. The model is the sequential fold, which is what the table must
 * equal once everything is projected (each key stays on one partition, in produce order).
 */
export class EntityLoad {
  readonly events: Envelope[] = [];
  private readonly changes: EntityChange[] = [];
  private readonly random: () => number;
  private readonly clock = new Map<number, number>();
  private sequence = 0;
  private readonly entities: number;

  constructor(entities: number, seed: number) {
    this.entities = entities;
    this.random = prng(seed);
  }

  next(count: number): Envelope[] {
    const out: Envelope[] = [];
    for (let i = 0; i < count; i += 1) {
      const entity = 1 + Math.floor(this.random() * this.entities);
      const roll = this.random();
      const previous = this.changes.length > 0 ? this.changes[Math.floor(this.random() * this.changes.length)] : undefined;
      if (roll < 0.05 && previous) {
        // The same event again (a redelivery somewhere upstream).
        this.push(previous, out);
        continue;
      }
      const now = (this.clock.get(entity) ?? 0) + 1 + Math.floor(this.random() * 3);
      this.clock.set(entity, now);
      const late = roll < 0.15; // an older state arriving after newer ones
      const seconds = late ? Math.max(0, now - 1 - Math.floor(this.random() * 4)) : now;
      const deleted = roll > 0.92;
      const withState = !deleted || this.random() < 0.5;
      this.sequence += 1;
      const id = `evt-${this.sequence}`;
      const auth = LOAD_AUTHS[this.sequence % LOAD_AUTHS.length];
      const change: EntityChange = {
        source: 'github',
        entityType: 'issue',
        entityId: `acme/widgets#${entity}`,
        version: entityVersion(BigInt(1_790_000_000 + seconds) * 1_000_000n, 1_790_000_000_000_000n + BigInt(this.sequence)),
        deleted,
        state: withState
          ? {
              id: entity,
              number: entity,
              title: `issue ${entity} at ${seconds}`,
              state: this.random() < 0.7 ? 'open' : 'closed',
              labels: [{ name: `l${Math.floor(this.random() * 5)}` }],
              created_at: '2026-11-24T00:00:00Z',
              updated_at: new Date((1_790_000_000 + seconds) * 1000).toISOString().replace('.000', ''),
            }
          : null,
        eventId: id,
        eventType: deleted ? 'github.issue.deleted' : 'github.issue.upserted',
        time: new Date().toISOString(),
        // A keyed change came from a command that key sent; the others from a poll.
        origin: auth === undefined ? { kind: 'poll', id: 'load', connection: 'github' } : { kind: 'command', id: `cmd-${this.sequence}`, connection: 'github' },
        auth,
        topic: '',
        partition: 0,
        offset: '0',
        raw: '', // envelopeOf() rebuilds the event that is produced
      };
      this.push(change, out);
    }
    return out;
  }

  private push(change: EntityChange, out: Envelope[]) {
    this.changes.push(change);
    const event = envelopeOf(change);
    this.events.push(event);
    out.push(event);
  }

  model(): Map<string, ModelRow> {
    return foldModel(this.changes);
  }
}

/** Command results for `count` commands: accepted then succeeded, some delivered twice. */
export function commandResults(count: number, seed: number, prefix: string): TopicEventInput<typeof topics.commandResults>[] {
  const random = prng(seed);
  const out: TopicEventInput<typeof topics.commandResults>[] = [];
  for (let i = 0; i < count; i += 1) {
    const commandId = `${prefix}-${i}`;
    for (const status of ['accepted', 'succeeded'] as const) {
      const event = createEvent({
        type: `switchyard.command.${status}`,
        source: 'test',
        subject: commandId,
        correlationId: `corr-${i % 50}`,
        data: { commandId, commandType: 'github.issue.create', status },
      });
      out.push(event);
      if (random() < 0.1) out.push(event);
    }
  }
  return out;
}

export async function produceInChunks<T extends Envelope>(
  producer: EventProducer,
  topic: typeof topics.entities | typeof topics.commandResults,
  events: readonly T[],
  chunk = 500,
): Promise<void> {
  for (let i = 0; i < events.length; i += chunk) {
    await producer.send(topic, events.slice(i, i + chunk) as never);
  }
}
