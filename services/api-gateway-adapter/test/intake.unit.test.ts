import { commandCatalog, commandSchemas, isTraceparent, validateEvent, topics } from '@switchyard/events';
import { describe, expect, it } from 'vitest';
import { AdapterError } from '../src/errors.js';
import { ISSUE_COMMAND_TYPES } from '../src/github/issues.js';
import { buildCommand, HTTP_SOURCE } from '../src/intake.js';

const options = { connections: ['github'] };
const create = { owner: 'acme', repo: 'widgets', title: 'Widget jams' };

function refusal(body: unknown): { code: string; field: string | undefined; message: string } {
  try {
    buildCommand(body, options);
  } catch (error) {
    if (error instanceof AdapterError) return { code: error.code, field: error.field, message: error.message };
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('building commands from HTTP submissions', () => {
  it('builds the command envelope with defaults and a receipt', () => {
    const now = new Date('2026-11-24T05:00:00.000Z');
    const { envelope, receipt } = buildCommand({ type: 'github.issue.create', input: create }, { ...options, now, id: 'cmd-1' });
    expect(envelope).toMatchObject({
      specversion: '1.0',
      id: 'cmd-1',
      type: 'github.issue.create',
      source: HTTP_SOURCE,
      subject: 'github:repository:acme/widgets',
      time: '2026-11-24T05:00:00.000Z',
      correlationid: 'cmd-1',
      data: { connection: 'github', idempotencyKey: 'cmd-1', input: create },
    });
    expect(isTraceparent(envelope.traceparent ?? '')).toBe(true);
    expect(validateEvent(topics.commands, envelope).ok).toBe(true);
    expect(receipt).toEqual({ commandId: 'cmd-1', correlationId: 'cmd-1', type: 'github.issue.create', target: 'github:repository:acme/widgets' });
  });

  it('keeps the given correlation id, idempotency key and connection, and continues the caller’s trace', () => {
    const parent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const { envelope } = buildCommand(
      { type: 'github.issue.update', input: { owner: 'acme', repo: 'widgets', number: 7, state: 'closed' }, correlationId: 'order-9', idempotencyKey: 'k-1', connection: 'github' },
      { ...options, traceparent: parent },
    );
    expect(envelope).toMatchObject({ correlationid: 'order-9', subject: 'github:issue:acme/widgets#7', data: { idempotencyKey: 'k-1' } });
    expect(envelope.traceparent?.split('-')[1]).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(envelope.traceparent?.split('-')[2]).not.toBe('00f067aa0ba902b7');
  });

  it('accepts commands other services carry out, with their provider as connection', () => {
    const { envelope } = buildCommand({ type: 'switchyard.projection.rebuild', input: { projection: 'entities' } }, options);
    expect(envelope).toMatchObject({ subject: 'switchyard:projection:entities', data: { connection: 'switchyard' } });
    expect(commandSchemas['switchyard.projection.rebuild'].safeParse(envelope).success).toBe(true);
  });

  it.each([
    ['an unknown type', { type: 'github.issue.delete', input: create }, 'AGW_COMMAND_TYPE_INVALID', 'type'],
    ['no type', { input: create }, 'AGW_COMMAND_TYPE_INVALID', 'type'],
    ['no input', { type: 'github.issue.create' }, 'AGW_COMMAND_INPUT_INVALID', 'input'],
    ['a missing title', { type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets' } }, 'AGW_COMMAND_INPUT_INVALID', 'input.title'],
    ['an empty label', { type: 'github.issue.create', input: { ...create, labels: ['bug', ''] } }, 'AGW_COMMAND_INPUT_INVALID', 'input.labels[1]'],
    ['an unknown input key', { type: 'github.issue.create', input: { ...create, milestone: 3 } }, 'AGW_COMMAND_INPUT_INVALID', 'input'],
    ['an update that changes nothing', { type: 'github.issue.update', input: { owner: 'acme', repo: 'widgets', number: 1 } }, 'AGW_COMMAND_INPUT_INVALID', 'input'],
    ['an unknown field', { type: 'github.issue.create', input: create, idempotency_key: 'x' }, 'AGW_REQUEST_INVALID', 'idempotency_key'],
    ['a long correlation id', { type: 'github.issue.create', input: create, correlationId: 'x'.repeat(201) }, 'AGW_REQUEST_INVALID', 'correlationId'],
    ['an unconfigured connection', { type: 'github.issue.create', input: create, connection: 'github-enterprise' }, 'AGW_CONNECTION_INVALID', 'connection'],
  ])('refuses %s naming the field', (_what, body, code, field) => {
    expect(refusal(body)).toMatchObject({ code, field });
  });

  it('refuses a body that is not an object', () => {
    expect(refusal([1, 2])).toMatchObject({ code: 'AGW_REQUEST_INVALID' });
    expect(refusal(null)).toMatchObject({ code: 'AGW_REQUEST_INVALID' });
  });

  it('says which types exist when the type is unknown', () => {
    expect(refusal({ type: 'github.issue.delete', input: {} }).message).toContain('github.issue.create');
  });
});

describe('command routing', () => {
  it('implements every command type the catalog routes to the adapter', () => {
    const routed = Object.entries(commandCatalog)
      .filter(([, spec]) => spec.handledBy === 'api-gateway-adapter')
      .map(([type]) => type);
    expect([...ISSUE_COMMAND_TYPES].sort()).toEqual(routed.sort());
  });
});
