import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpServer, createLogger, type FastifyInstance } from '../src/index.js';

// A real server on loopback: the JSON parser and error handler are what every service's routes answer with.
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  app = createHttpServer({ logger: createLogger({ service: 'http-test', level: 'silent' }), bodyLimit: 1024 });
  app.post('/echo', async (request) => ({ got: request.body }));
  url = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app.close();
});

async function post(body: string, contentType = 'application/json') {
  const response = await fetch(`${url}/echo`, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

function refusal(field: string, message: RegExp) {
  return { error: { code: 'RT_REQUEST_INVALID', field, message: expect.stringMatching(message), retriable: false } };
}

describe('JSON bodies', () => {
  it('takes ordinary JSON, keys named constructor with plain values included', async () => {
    const body = { a: [1, { b: 'c' }], constructor: 'x', text: 'mentions __proto__ and \u00e9' };
    expect(await post(JSON.stringify(body))).toEqual({ status: 200, body: { got: body } });
  });

  it('names the body for an empty or malformed one, with the parser saying where', async () => {
    expect(await post('')).toEqual({ status: 400, body: refusal('body', /empty/) });
    expect(await post('{"a": ')).toEqual({ status: 400, body: refusal('body', /not valid JSON: .*JSON/) });
  });

  it('refuses a __proto__ or constructor.prototype key anywhere, naming its path, and pollutes nothing', async () => {
    expect(await post('{"__proto__": []}')).toEqual({ status: 400, body: refusal('__proto__', /__proto__ is refused/) });
    expect(await post('{"input": {"labels": [{"__proto__": {"admin": true}}]}}')).toEqual({
      status: 400,
      body: refusal('input.labels[0].__proto__', /__proto__ is refused/),
    });
    // The escaped spelling is the same key once parsed.
    expect(await post('{"x": {"\\u005f_proto__": {"admin": true}}}')).toEqual({ status: 400, body: refusal('x.__proto__', /__proto__/) });
    expect(await post('{"constructor": {"prototype": {"admin": true}}}')).toEqual({
      status: 400,
      body: refusal('constructor.prototype', /constructor\.prototype is refused/),
    });
    expect(({} as Record<string, unknown>)['admin']).toBeUndefined();
  });

  it('names the content type when it is not JSON, and the body when it is too large', async () => {
    expect(await post('<a/>', 'application/xml')).toEqual({ status: 415, body: refusal('content-type', /content-type|Unsupported Media Type/i) });
    expect(await post(JSON.stringify({ text: 'x'.repeat(2000) }))).toEqual({ status: 413, body: refusal('body', /too large/i) });
  });
});
