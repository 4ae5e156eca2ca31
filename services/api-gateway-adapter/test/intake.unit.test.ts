import { CommandApiError } from '@switchyard/api';
import { connectors } from '@switchyard/connectors';
import { commandCatalog, commandSchemas, isTraceparent, validateEvent, topics } from '@switchyard/events';
import { describe, expect, it } from 'vitest';
import { buildCommand, commandIdFor, HTTP_SOURCE } from '../src/intake.js';

const options = { connections: new Map([['github', 'github']]) };
const create = { owner: 'acme', repo: 'widgets', title: 'Widget jams' };

function refusal(body: unknown): { code: string; field: string | undefined; message: string } {
  try {
    buildCommand(body, options);
  } catch (error) {
    if (error instanceof CommandApiError) return { code: error.code, field: error.field, message: error.message };
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
    ['an empty idempotency key', { type: 'github.issue.create', input: create, idempotencyKey: '' }, 'AGW_REQUEST_INVALID', 'idempotencyKey'],
  ])('refuses %s naming the field', (_what, body, code, field) => {
    expect(refusal(body)).toMatchObject({ code, field });
  });

  it('refuses a connection of another provider', () => {
    const mixed = { connections: new Map([['github', 'github'], ['payments', 'stripe']]) };
    expect(() => buildCommand({ type: 'github.issue.create', input: create, connection: 'payments' }, mixed)).toThrow(/no github connection named "payments"; configured: github/);
  });

  it('names a command by caller and Idempotency-Key: the same on every instance, another for another key or caller', () => {
    const first = buildCommand({ type: 'github.issue.create', input: create }, { ...options, idempotencyKey: 'order-7' });
    const again = buildCommand({ type: 'github.issue.create', input: create }, { ...options, idempotencyKey: 'order-7' });
    const inBody = buildCommand({ type: 'github.issue.create', input: create, idempotencyKey: 'order-7' }, options);
    expect(first.receipt.commandId).toBe(commandIdFor('anonymous', 'order-7'));
    expect([again.receipt.commandId, inBody.receipt.commandId]).toEqual([first.receipt.commandId, first.receipt.commandId]);
    expect(first.receipt.commandId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(first.envelope.data.idempotencyKey).toBe('order-7');
    expect(first.keyed).toBe(true);
    expect(commandIdFor('anonymous', 'order-8')).not.toBe(first.receipt.commandId);
    expect(commandIdFor('key-1', 'order-7')).not.toBe(first.receipt.commandId);
  });

  it('refuses an Idempotency-Key header that cannot be one, or that disagrees with the body', () => {
    for (const header of ['', ' padded', 'x'.repeat(256), 'tab\there', 'ünicode']) {
      try {
        buildCommand({ type: 'github.issue.create', input: create }, { ...options, idempotencyKey: header });
        throw new Error(`accepted ${JSON.stringify(header)}`);
      } catch (error) {
        expect(error, JSON.stringify(header)).toBeInstanceOf(CommandApiError);
        expect((error as CommandApiError).field).toBe('Idempotency-Key');
      }
    }
    expect(() => buildCommand({ type: 'github.issue.create', input: create, idempotencyKey: 'a' }, { ...options, idempotencyKey: 'b' })).toThrow(
      /idempotencyKey: differs from the Idempotency-Key header/,
    );
  });

  it('keys a create by its own id and an update by its issue, so creates in one repository run side by side', () => {
    const create1 = buildCommand({ type: 'github.issue.create', input: create }, options).envelope;
    const create2 = buildCommand({ type: 'github.issue.create', input: create }, options).envelope;
    const update = buildCommand({ type: 'github.issue.update', input: { owner: 'acme', repo: 'widgets', number: 3, state: 'closed' } }, options).envelope;
    expect(topics.commands.keyOf(create1 as never)).toBe(create1.id);
    expect(topics.commands.keyOf(create2 as never)).toBe(create2.id);
    expect(topics.commands.keyOf(update as never)).toBe('github:issue:acme/widgets#3');
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
  it('has a connector for every command type the catalog routes to the adapter, and each type to one connector', () => {
    const routed = Object.entries(commandCatalog)
      .filter(([, spec]) => spec.handledBy === 'api-gateway-adapter')
      .map(([type]) => type);
    const implemented = connectors.flatMap((connector) => Object.keys(connector.commands));
    expect([...implemented].sort()).toEqual(routed.sort());
    for (const connector of connectors) {
      for (const type of Object.keys(connector.commands)) expect(type.startsWith(`${connector.provider}.`), type).toBe(true);
    }
  });
});
