import { describe, expect, it } from 'vitest';
import {
  childTraceparent,
  commandCatalog,
  commandSchemas,
  compareVersions,
  createEvent,
  decodeEvent,
  encodeEvent,
  entityKey,
  entityVersion,
  isTraceparent,
  microsFromEpochSecondsString,
  microsFromIso,
  newId,
  newTraceparent,
  parseEntityEventType,
  parseEntityVersion,
  sourceVersions,
  topics,
  validateEvent,
  type Envelope,
} from '../src/index.js';

const issue = { id: 1, number: 7, title: 'Jammed', state: 'open', labels: [], created_at: '2026-11-24T05:00:00Z', updated_at: '2026-11-24T05:00:00Z' };

function upserted(overrides: Record<string, unknown> = {}): Envelope {
  const version = sourceVersions.githubIssue(issue, 1_795_000_000_000_000n);
  return createEvent({
    type: 'github.issue.upserted',
    source: 'test',
    subject: entityKey('github', 'issue', 'acme/widgets#7'),
    entityVersion: version,
    data: { source: 'github', entityType: 'issue', entityId: 'acme/widgets#7', version, origin: { kind: 'poll', id: 'p', connection: 'github' }, state: issue, ...overrides },
  });
}

describe('envelope', () => {
  it('fills the CloudEvents attributes and starts a conversation when given no correlation id', () => {
    const event = createEvent({ type: 'github.issue.upserted', source: 'test', data: {}, time: new Date('2026-11-24T05:00:00Z') });
    expect(event).toMatchObject({ specversion: '1.0', source: 'test', datacontenttype: 'application/json', time: '2026-11-24T05:00:00.000Z' });
    expect(event.correlationid).toBe(event.id);
    expect(Object.keys(event)).not.toContain('subject');
  });

  it('uses time-ordered UUIDv7 ids', () => {
    const first = newId(1_700_000_000_000);
    const later = newId(1_700_000_000_001);
    expect(first).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(first < later).toBe(true);
  });

  it('keeps the trace id in child spans and draws a new span id', () => {
    const parent = newTraceparent();
    const child = childTraceparent(parent);
    expect(isTraceparent(parent) && isTraceparent(child)).toBe(true);
    expect(child.slice(0, 35)).toBe(parent.slice(0, 35));
    expect(child.slice(36, 52)).not.toBe(parent.slice(36, 52));
    expect(isTraceparent(childTraceparent('garbage'))).toBe(true);
    expect(isTraceparent(`00-${'0'.repeat(32)}-${'1'.repeat(16)}-01`)).toBe(false);
  });
});

describe('decoding against the topic catalog', () => {
  it('round-trips an event and keeps unknown fields of provider state', () => {
    const decoded = decodeEvent(topics.entities, encodeEvent(upserted({ state: { ...issue, milestone: 'v1' } })));
    expect(decoded.ok).toBe(true);
    if (decoded.ok) expect((decoded.event.data.state as { milestone?: string }).milestone).toBe('v1');
  });

  it('says what is wrong and where: empty, not JSON, a missing attribute, an unknown type, bad data', () => {
    const code = (value: Buffer | null) => {
      const decoded = decodeEvent(topics.entities, value);
      return decoded.ok ? 'ok' : [decoded.error.code, decoded.error.field];
    };
    expect(code(null)).toEqual(['EVT_EMPTY_VALUE', undefined]);
    expect(code(Buffer.from('{"type":'))).toEqual(['EVT_NOT_JSON', undefined]);
    const { time: _time, ...withoutTime } = upserted();
    expect(code(Buffer.from(JSON.stringify(withoutTime)))).toEqual(['EVT_INVALID_ENVELOPE', 'time']);
    expect(code(Buffer.from(JSON.stringify({ ...upserted(), type: 'github.issue.created' })))).toEqual(['EVT_UNKNOWN_TYPE', 'type']);
    expect(code(encodeEvent(upserted({ state: { ...issue, labels: [{ color: 'red' }] } })))).toEqual(['EVT_INVALID_DATA', 'data.state.labels[0].name']);
    expect(code(encodeEvent(upserted({ version: '2026-11-24' })))).toEqual(['EVT_INVALID_DATA', 'data.version']);
  });

  it('refuses a command event on the entities topic', () => {
    const command = createEvent({ type: 'github.issue.create', source: 'test', data: {} });
    expect(validateEvent(topics.entities, command)).toMatchObject({ ok: false, error: { code: 'EVT_UNKNOWN_TYPE' } });
  });

  it('has a schema for every command in the catalog, validating its input', () => {
    expect(Object.keys(commandSchemas).sort()).toEqual(Object.keys(commandCatalog).sort());
    const command = createEvent({
      type: 'github.issue.update',
      source: 'test',
      data: { connection: 'github', idempotencyKey: 'k', input: { owner: 'acme', repo: 'widgets', number: 3 } },
    });
    const result = validateEvent(topics.commands, command);
    expect(result.ok ? 'ok' : result.error.message).toMatch(/nothing to change/);
  });

  it('keys each topic as the catalog says', () => {
    const event = upserted();
    expect(topics.entities.keyOf(event)).toBe('github:issue:acme/widgets#7');
    const result = createEvent({ type: 'switchyard.command.accepted', source: 't', data: { commandId: 'c-1', commandType: 'x', status: 'accepted' } });
    expect(topics.commandResults.keyOf(result)).toBe('c-1');
  });
});

describe('entity versions', () => {
  it('order by when the state became true, then by when it was observed', () => {
    const early = entityVersion(microsFromIso('2026-11-24T05:00:00Z'), 2_000n);
    const sameInstantLaterSeen = entityVersion(microsFromIso('2026-11-24T05:00:00Z'), 3_000n);
    const later = entityVersion(microsFromIso('2026-11-24T05:00:01Z'), 1_000n);
    expect([later, sameInstantLaterSeen, early].sort()).toEqual([early, sameInstantLaterSeen, later]);
    expect(compareVersions(early, later)).toBe(-1);
    expect(compareVersions(early, parseEntityVersion(early))).toBe(0);
  });

  it('keeps microseconds that JavaScript dates lose', () => {
    expect(microsFromIso('2026-11-24T05:00:00.123456Z') - microsFromIso('2026-11-24T05:00:00.123455Z')).toBe(1n);
    expect(microsFromIso('2026-11-24T07:00:00+02:00')).toBe(microsFromIso('2026-11-24T05:00:00Z'));
    expect(microsFromEpochSecondsString('1700000000.000042')).toBe(1_700_000_000_000_042n);
  });

  it('derives each source’s as-of time as documented', () => {
    const observed = 1_795_000_000_000_000n;
    expect(sourceVersions.githubIssue({ updated_at: '2026-11-24T05:00:00Z' }, observed)).toBe('2026-11-24T05:00:00.000000Z/1795000000000000');
    expect(sourceVersions.stripe(1_700_000_000, observed).startsWith('2023-11-14T22:13:20.000000Z/')).toBe(true);
    expect(sourceVersions.stripe(undefined, observed).startsWith('2026-11-18')).toBe(true);
    expect(sourceVersions.slackMessage({ ts: '1700000000.000100', edited: { ts: '1700000001.000000' } }, observed)).toBe(
      '2023-11-14T22:13:21.000000Z/1795000000000000',
    );
  });

  it('rejects malformed versions', () => {
    expect(() => parseEntityVersion('2026-11-24T05:00:00Z')).toThrow(/not an entity version/);
    expect(() => microsFromIso('yesterday')).toThrow(/not an ISO-8601/);
  });

  it('splits entity event types', () => {
    expect(parseEntityEventType('stripe.payment_intent.deleted')).toEqual({ entity: 'stripe.payment_intent', change: 'deleted' });
    expect(parseEntityEventType('github.issue.create')).toBeUndefined();
  });
});
