import { describe, expect, it } from 'vitest';
import { closeReason, EventFrames, parseClientMessage, parseStreamQuery, validateClientMessage } from '../src/protocol.js';

function problem(json: unknown) {
  const parsed = validateClientMessage(json);
  if (parsed.ok) throw new Error(`expected ${JSON.stringify(json)} to be refused`);
  return { code: parsed.error.code, message: parsed.error.message, field: parsed.error.details['field'] };
}

describe('client messages', () => {
  it('accepts the three operations', () => {
    expect(validateClientMessage({ op: 'subscribe', id: 's1', filter: { types: ['github.issue.*'] } })).toMatchObject({
      ok: true,
      value: { op: 'subscribe', id: 's1', filter: { types: ['github.issue.*'] } },
    });
    expect(validateClientMessage({ op: 'subscribe', id: 's1' })).toMatchObject({ ok: true });
    expect(validateClientMessage({ op: 'unsubscribe', id: 's1' })).toMatchObject({ ok: true });
    expect(validateClientMessage({ op: 'ping' })).toMatchObject({ ok: true });
  });

  it.each([
    [{}, 'op', 'op: expected subscribe, unsubscribe or ping'],
    [{ op: 'subscrbe', id: 's1' }, 'op', 'op: expected subscribe, unsubscribe or ping'],
    [{ op: 'subscribe' }, 'id', 'id: Invalid input: expected string, received undefined'],
    [{ op: 'subscribe', id: '' }, 'id', 'id: Too small: expected string to have >=1 characters'],
    [{ op: 'subscribe', id: 7 }, 'id', 'id: Invalid input: expected string, received number'],
    [{ op: 'subscribe', id: 's1', fliter: {} }, 'fliter', 'fliter: unknown field'],
    [{ op: 'subscribe', id: 's1', filter: { typs: ['a.b'] } }, 'filter.typs', 'filter.typs: unknown field'],
    [{ op: 'subscribe', id: 's1', filter: { types: 'github.issue.*' } }, 'filter.types', 'filter.types: Invalid input: expected array, received string'],
    [{ op: 'subscribe', id: 's1', filter: { types: [] } }, 'filter.types', 'filter.types: give at least one type or leave types out'],
    [
      { op: 'subscribe', id: 's1', filter: { types: ['github.issue.*', 'github.issue.up*'] } },
      'filter.types[1]',
      'filter.types[1]: expected lower-case segments, * or a trailing **',
    ],
    [{ op: 'subscribe', id: 's1', filter: { subjects: ['a', ''] } }, 'filter.subjects[1]', 'filter.subjects[1]: Too small: expected string to have >=1 characters'],
    [{ op: 'subscribe', id: 's1', filter: { correlationId: 5 } }, 'filter.correlationId', 'filter.correlationId: Invalid input: expected string, received number'],
    [{ op: 'ping', id: 'x' }, 'id', 'id: unknown field'],
    [[], '(root)', '(root): expected a JSON object'],
    ['subscribe', '(root)', '(root): expected a JSON object'],
    [null, '(root)', '(root): expected a JSON object'],
  ])('%j → names %s', (json, field, message) => {
    expect(problem(json)).toEqual({ code: 'WS_INVALID_MESSAGE', field, message });
  });

  it('refuses binary frames and text that is not JSON as WS_INVALID_JSON', () => {
    expect(parseClientMessage(Buffer.from('{"op":"ping"}'), true)).toMatchObject({ ok: false, error: { code: 'WS_INVALID_JSON' } });
    const notJson = parseClientMessage(Buffer.from('hello'), false);
    expect(notJson).toMatchObject({ ok: false, error: { code: 'WS_INVALID_JSON', message: expect.stringMatching(/^not JSON: /) } });
    expect(parseClientMessage(Buffer.from('{"op":"ping"}'), false)).toEqual({ ok: true, value: { op: 'ping' } });
  });
});

describe('close reasons', () => {
  it('keep short reasons as they are', () => {
    expect(closeReason('id: subscription "s1" is already open')).toBe('id: subscription "s1" is already open');
  });

  it('cut long reasons to 123 bytes without splitting a character', () => {
    const ascii = closeReason(`filter.types[0]: ${'x'.repeat(300)}`);
    expect(Buffer.byteLength(ascii)).toBeLessThanOrEqual(123);
    expect(ascii.startsWith('filter.types[0]: xxx')).toBe(true);
    expect(ascii.endsWith('…')).toBe(true);
    const wide = closeReason(`id: ${'é€😀'.repeat(40)}`);
    expect(Buffer.byteLength(wide)).toBeLessThanOrEqual(123);
    expect(wide).not.toContain('\uFFFD');
    expect(Buffer.from(wide, 'utf8').toString('utf8')).toBe(wide);
  });
});

describe('stream query', () => {
  it('no filter parameters → no default subscription', () => {
    expect(parseStreamQuery(new URLSearchParams('token=abc'))).toEqual({ ok: true, value: undefined });
  });

  it('reads comma-separated and repeated lists and the correlation id', () => {
    const parsed = parseStreamQuery(
      new URLSearchParams('types=github.issue.*,switchyard.command.*&types=stripe.**&subjects=github:issue:a/b%231&correlationId=req-1'),
    );
    expect(parsed).toEqual({
      ok: true,
      value: {
        types: ['github.issue.*', 'switchyard.command.*', 'stripe.**'],
        subjects: ['github:issue:a/b#1'],
        correlationId: 'req-1',
      },
    });
  });

  it('names the bad entry, and refuses an empty list', () => {
    expect(parseStreamQuery(new URLSearchParams('types=github.issue.*,Nope'))).toMatchObject({
      ok: false,
      error: { code: 'WS_INVALID_MESSAGE', message: 'types[1]: expected lower-case segments, * or a trailing **' },
    });
    expect(parseStreamQuery(new URLSearchParams('types='))).toMatchObject({
      ok: false,
      error: { message: 'types: give at least one type or leave types out' },
    });
  });
});

describe('event frames', () => {
  it('wrap the event once per subscription id, as valid JSON', () => {
    const event = { id: 'e1', type: 'github.issue.upserted', data: { title: 'quote " and \u2028' } };
    const frames = new EventFrames(event);
    const first = frames.for('s"1');
    expect(frames.for('s"1')).toBe(first);
    expect(JSON.parse(first.toString('utf8'))).toEqual({ op: 'event', subscription: 's"1', event });
    expect(JSON.parse(frames.for('default').toString('utf8'))).toEqual({ op: 'event', subscription: 'default', event });
  });
});
