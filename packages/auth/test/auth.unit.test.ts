import { compileTypes, patternCovers } from '@switchyard/events';
import { createHttpServer, createLogger } from '@switchyard/service-runtime';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Authenticator, AuthError, CommandBudget, Grants, guard, hashKey, keyMatches, mintKey, parseKey, presentedKey, scopeProblem } from '../src/index.js';

describe('key format', () => {
  it('a key is sy_<16 hex>_<43 base64url>: 256 random bits of secret behind a visible id', () => {
    const minted = mintKey();
    expect(minted.key).toMatch(/^sy_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(minted.key.startsWith(`${minted.keyId}_`)).toBe(true);
    expect(Buffer.from(minted.key.slice(20), 'base64url')).toHaveLength(32);
    expect(minted.hash).toBe(hashKey(minted.key));
    expect(parseKey(minted.key)).toEqual({ keyId: minted.keyId, key: minted.key });
    const keys = new Set(Array.from({ length: 1000 }, () => mintKey().key));
    expect(keys.size).toBe(1000);
  });

  it('only the key hashes to its hash; a changed character, a prefix or another key do not', () => {
    const { key, hash } = mintKey();
    expect(keyMatches(key, hash)).toBe(true);
    expect(keyMatches(`${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`, hash)).toBe(false);
    expect(keyMatches(key.slice(0, -1), hash)).toBe(false);
    expect(keyMatches(mintKey().key, hash)).toBe(false);
    expect(keyMatches(key, 'not hex')).toBe(false);
  });

  it('parseKey accepts nothing but the exact shape', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 100 }), (text) => {
        const parsed = parseKey(text);
        if (parsed !== undefined) expect(text).toMatch(/^sy_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
      }),
      { numRuns: 2000 },
    );
    expect(parseKey(`${mintKey().key} `)).toBeUndefined();
    expect(parseKey(mintKey().key.toUpperCase())).toBeUndefined();
  });
});

describe('scopes', () => {
  it('commands:send patterns grant their types and never an admin command', () => {
    const grants = new Grants(['commands:send:github.issue.*']);
    expect(grants.missingToSend('github.issue.create')).toBeUndefined();
    expect(grants.missingToSend('github.issue.comment.create')).toBe('commands:send:github.issue.comment.create');
    expect(grants.missingToSend('stripe.customer.create')).toBe('commands:send:stripe.customer.create');
    const everything = new Grants(['commands:send:**']);
    expect(everything.missingToSend('stripe.refund.create')).toBeUndefined();
    expect(everything.missingToSend('switchyard.projection.rebuild')).toBe('admin');
    expect(new Grants(['admin']).missingToSend('switchyard.projection.rebuild')).toBeUndefined();
  });

  it('route requirements: a family is met by any scope of it; admin meets all', () => {
    const reader = new Grants(['commands:read']);
    expect([reader.meets('commands:read'), reader.meets('commands:send'), reader.meets('stream'), reader.meets('admin'), reader.meets('health:read')]).toEqual([
      true, false, false, false, false,
    ]);
    const admin = new Grants(['admin']);
    expect(['admin', 'commands:send', 'commands:read', 'stream', 'health:read'].every((requirement) => admin.meets(requirement as never))).toBe(true);
    expect(new Grants(['stream:github.**']).meets('stream')).toBe(true);
  });

  it('reading: own commands with commands:read, anyone’s with commands:read:all', () => {
    expect(new Grants(['commands:read']).mayRead('sy_a', 'sy_a')).toBe(true);
    expect(new Grants(['commands:read']).mayRead('sy_b', 'sy_a')).toBe(false);
    expect(new Grants(['commands:read']).mayRead(undefined, 'sy_a')).toBe(false);
    expect(new Grants(['commands:read:all']).mayRead('sy_b', 'sy_a')).toBe(true);
    expect(new Grants(['commands:send:**']).mayRead('sy_a', 'sy_a')).toBe(false);
  });

  it('stream patterns: a subscription pattern is allowed only when the scopes cover every type it can match', () => {
    const grants = new Grants(['stream:github.**', 'stream:switchyard.command.succeeded']);
    expect(grants.mayStreamPattern('github.issue.*')).toBe(true);
    expect(grants.mayStreamPattern('github.**')).toBe(true);
    expect(grants.mayStreamPattern('**')).toBe(false);
    expect(grants.mayStreamPattern('switchyard.command.*')).toBe(false);
    expect(grants.mayStreamPattern('switchyard.command.succeeded')).toBe(true);
    expect(grants.mayStream('github.issue.upserted')).toBe(true);
    expect(grants.mayStream('switchyard.command.failed')).toBe(false);
  });

  it('patternCovers is sound: whatever the inner pattern matches, the outer matches too', () => {
    const segment = fc.constantFrom('github', 'issue', 'upserted', 'switchyard', 'command', 'x');
    const patternSegment = fc.oneof(segment, fc.constant('*'));
    const pattern = fc
      .tuple(fc.array(patternSegment, { minLength: 1, maxLength: 4 }), fc.boolean())
      .map(([segments, tail]) => [...segments, ...(tail ? ['**'] : [])].join('.'));
    const type = fc.array(segment, { minLength: 1, maxLength: 6 }).map((segments) => segments.join('.'));
    fc.assert(
      fc.property(pattern, pattern, fc.array(type, { minLength: 20, maxLength: 20 }), (outer, inner, types) => {
        if (!patternCovers(outer, inner)) return;
        const matchOuter = compileTypes([outer]);
        const matchInner = compileTypes([inner]);
        for (const candidate of types) if (matchInner(candidate)) expect(matchOuter(candidate), `${outer} ⊇ ${inner} at ${candidate}`).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('invalid scopes are refused with the reason', () => {
    expect(scopeProblem('commands:send:github.issue.up*')).toMatch(/lower-case segments/);
    expect(scopeProblem('commands:write')).toMatch(/expected admin/);
    expect(scopeProblem('stream:**.x')).toMatch(/last segment/);
    expect(scopeProblem('stream:**')).toBeUndefined();
    expect(() => new Grants(['root'])).toThrow(/not a scope/);
  });
});

describe('command budget (token bucket)', () => {
  it('takes the burst at once, refills at the rate, and says when to come back', () => {
    let now = 0;
    const budget = new CommandBudget({ commandsPerSecond: 4, burst: 8 }, () => now);
    const taken = Array.from({ length: 9 }, () => budget.take('k', 1, undefined));
    expect(taken.map((decision) => decision.allowed)).toEqual([true, true, true, true, true, true, true, true, false]);
    expect(taken[0]).toMatchObject({ limit: 8, remaining: 7 });
    expect(taken[8]).toMatchObject({ allowed: false, remaining: 0, retryAfterSeconds: 1, resetSeconds: 2 });
    now = 250; // one token back
    expect(budget.take('k', 1, undefined).allowed).toBe(true);
    expect(budget.take('k', 1, undefined).allowed).toBe(false);
    now = 10_000;
    expect(budget.take('k', 8, undefined)).toMatchObject({ allowed: true, remaining: 0 });
    // Another key, its own limits.
    expect(budget.take('other', 3, { commandsPerSecond: 1, burst: 2 })).toMatchObject({ allowed: false, limit: 2, retryAfterSeconds: 1 });
  });

  it('headers: RateLimit-* always, Retry-After when refused', () => {
    const budget = new CommandBudget({ commandsPerSecond: 1, burst: 1 }, () => 0);
    expect(CommandBudget.headers(budget.take('k', 1, undefined))).toEqual({
      'ratelimit-limit': '1',
      'ratelimit-remaining': '0',
      'ratelimit-reset': '1',
      'ratelimit-policy': '1;w=1',
    });
    expect(CommandBudget.headers(budget.take('k', 1, undefined))).toMatchObject({ 'retry-after': '1' });
  });

  it('forgets buckets that are full again, so memory follows the active keys', () => {
    let now = 0;
    const budget = new CommandBudget({ commandsPerSecond: 1000, burst: 10 }, () => now);
    for (let index = 0; index < 5000; index += 1) budget.take(`key-${index}`, 1, undefined);
    now = 60_000;
    for (let index = 0; index < 1024; index += 1) budget.take('busy', 0, undefined);
    expect((budget as unknown as { buckets: Map<string, unknown> }).buckets.size).toBeLessThan(100);
  });
});

describe('presented credentials', () => {
  const { key, keyId, hash } = mintKey();
  const record = { keyId, name: 'k', hash, scopes: ['stream:**'], createdAt: '2026-01-01T00:00:00Z', createdBy: 'test' };
  const store = { isLoaded: true, get: (id: string) => (id === keyId ? { record, grants: new Grants(record.scopes) } : undefined) };
  const authenticator = new Authenticator(store);

  it('Bearer in any case, or the switchyard.bearer.<key> subprotocol next to switchyard.v1', () => {
    expect(presentedKey({ authorization: `Bearer ${key}` })).toBe(key);
    expect(presentedKey({ authorization: `bearer ${key}` })).toBe(key);
    expect(presentedKey({ 'sec-websocket-protocol': `switchyard.v1, switchyard.bearer.${key}` }, { subprotocol: true })).toBe(key);
    expect(presentedKey({ 'sec-websocket-protocol': `switchyard.bearer.${key}` })).toBeUndefined();
    expect(() => presentedKey({ 'sec-websocket-protocol': `switchyard.bearer.${key}, switchyard.bearer.${key}` }, { subprotocol: true })).toThrow(AuthError);
    expect(authenticator.fromHeaders({ authorization: `Bearer ${key}` })).toMatchObject({ keyId, auth: { type: 'api_key', id: keyId } });
  });

  it('every other header is a 401 whose message never contains the presented text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 120 }), fc.string({ maxLength: 80 }).map((text) => `Bearer ${text}`), fc.constant(`Bearer ${key.slice(0, -2)}zz`)), (header) => {
        if (header.trim() === `Bearer ${key}` || header === `Bearer ${key}`) return;
        try {
          authenticator.fromHeaders({ authorization: header });
        } catch (error) {
          expect(error).toBeInstanceOf(AuthError);
          expect((error as AuthError).httpStatus).toBe(401);
          const secret = header.slice(header.lastIndexOf('_') + 1);
          if (secret.length >= 8) expect((error as Error).message).not.toContain(secret);
          return;
        }
        throw new Error(`accepted ${JSON.stringify(header)}`);
      }),
      { numRuns: 3000 },
    );
  });

  it('keys are refused with 503 while the store is loading, and as revoked once revoked', () => {
    expect(() => new Authenticator({ ...store, isLoaded: false }).fromKey(key)).toThrow(expect.objectContaining({ code: 'AUTH_KEYS_UNAVAILABLE', httpStatus: 503 }));
    const revoked = { ...record, revokedAt: '2026-01-02T00:00:00Z' };
    const revokedStore = { isLoaded: true, get: () => ({ record: revoked, grants: new Grants(revoked.scopes) }) };
    expect(() => new Authenticator(revokedStore).fromKey(key)).toThrow(expect.objectContaining({ code: 'AUTH_KEY_REVOKED', httpStatus: 401 }));
    // A wrong secret for a revoked key says nothing about revocation.
    expect(() => new Authenticator(revokedStore).fromKey(`${keyId}_${mintKey().key.slice(20)}`)).toThrow(expect.objectContaining({ code: 'AUTH_KEY_UNKNOWN' }));
  });
});

describe('the guard', () => {
  it('refuses to register a route that states no requirement, so no route goes unguarded', async () => {
    const app = createHttpServer({ logger: createLogger({ service: 'test', level: 'silent' }) });
    guard(app, new Authenticator({ isLoaded: true, get: () => undefined }));
    app.get('/healthz', async () => 'ok');
    app.get('/v1/fine', { config: { auth: 'admin' } }, async () => 'ok');
    expect(() => app.get('/v1/forgotten', async () => 'oops')).toThrow('route GET /v1/forgotten declares no config.auth requirement');
    await app.ready();
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    const refused = await app.inject({ method: 'GET', url: '/v1/fine' });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['www-authenticate']).toBe('Bearer realm="switchyard"');
    expect(refused.json()).toMatchObject({ error: { code: 'AUTH_MISSING' } });
    await app.close();
  });
});
