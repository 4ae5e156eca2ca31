import { describe, expect, it } from 'vitest';
import { compileFilter, compileTypes, typePatternProblem } from '../src/filter.js';

const event = (type: string, subject?: string, correlationid = 'c-1') => ({ type, subject, correlationid });

describe('type patterns', () => {
  it.each([
    // pattern, type, matches
    ['github.issue.upserted', 'github.issue.upserted', true],
    ['github.issue.upserted', 'github.issue.deleted', false],
    ['github.issue.*', 'github.issue.upserted', true],
    ['github.issue.*', 'github.issue.deleted', true],
    ['github.issue.*', 'github.issue', false],
    ['github.issue.*', 'github.issue.comment.created', false],
    ['github.issue.*', 'github.issues.upserted', false],
    ['*.issue.*', 'github.issue.upserted', true],
    ['*.*.deleted', 'stripe.customer.deleted', true],
    ['*.*.deleted', 'stripe.customer.upserted', false],
    ['switchyard.command.*', 'switchyard.command.succeeded', true],
    ['switchyard.command.*', 'switchyard.commands.succeeded', false],
    ['github.**', 'github.issue.upserted', true],
    ['github.**', 'github.x', true],
    ['github.**', 'github', false],
    ['github.**', 'githubx.issue.upserted', false],
    ['switchyard.**', 'switchyard.record.dead_lettered', true],
    ['**', 'stripe.payment_intent.upserted', true],
    ['github.*.**', 'github.issue.upserted', true],
    ['github.*.**', 'github.issue', false],
  ])('%s against %s → %s', (pattern, type, expected) => {
    expect(typePatternProblem(pattern)).toBeUndefined();
    expect(compileTypes([pattern])(type)).toBe(expected);
  });

  it.each([
    ['github.issue.up*', 'expected lower-case segments, * or a trailing **'],
    ['GitHub.Issue', 'expected lower-case segments, * or a trailing **'],
    ['github..issue', 'expected lower-case segments, * or a trailing **'],
    ['github.issue.', 'expected lower-case segments, * or a trailing **'],
    ['**.upserted', '** is only allowed as the last segment'],
    ['github.***', 'expected lower-case segments, * or a trailing **'],
    ['github.issue.(upserted|deleted)', 'expected lower-case segments, * or a trailing **'],
  ])('refuses %s', (pattern, problem) => {
    expect(typePatternProblem(pattern)).toBe(problem);
  });

  it('matches any of several entries, exact and pattern alike, and answers repeat types the same way', () => {
    const matches = compileTypes(['stripe.customer.upserted', 'github.issue.*']);
    for (let round = 0; round < 2; round += 1) {
      expect(matches('stripe.customer.upserted')).toBe(true);
      expect(matches('stripe.customer.deleted')).toBe(false);
      expect(matches('github.issue.deleted')).toBe(true);
    }
  });
});

describe('filters', () => {
  it('an empty filter matches every event', () => {
    expect(compileFilter({})(event('slack.message.upserted'))).toBe(true);
  });

  it('matches subjects exactly; events without a subject never match a subject filter', () => {
    const matches = compileFilter({ subjects: ['github:issue:acme/widgets#1', 'github:issue:acme/widgets#2'] });
    expect(matches(event('github.issue.upserted', 'github:issue:acme/widgets#2'))).toBe(true);
    expect(matches(event('github.issue.upserted', 'github:issue:acme/widgets#12'))).toBe(false);
    expect(matches(event('github.issue.upserted'))).toBe(false);
  });

  it('matches the correlation id exactly', () => {
    const matches = compileFilter({ correlationId: 'req-1' });
    expect(matches(event('switchyard.command.succeeded', 'cmd', 'req-1'))).toBe(true);
    expect(matches(event('switchyard.command.succeeded', 'cmd', 'req-10'))).toBe(false);
  });

  it('requires every field that is present', () => {
    const matches = compileFilter({ types: ['github.issue.*'], subjects: ['github:issue:a/b#1'], correlationId: 'req-1' });
    expect(matches(event('github.issue.upserted', 'github:issue:a/b#1', 'req-1'))).toBe(true);
    expect(matches(event('github.issue.upserted', 'github:issue:a/b#1', 'req-2'))).toBe(false);
    expect(matches(event('github.issue.upserted', 'github:issue:a/b#2', 'req-1'))).toBe(false);
    expect(matches(event('stripe.customer.upserted', 'github:issue:a/b#1', 'req-1'))).toBe(false);
  });
});
