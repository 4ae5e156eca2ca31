import type { IncomingHttpHeaders } from 'node:http';
import type { ApiKeyLimits, AuthContext } from '@switchyard/events';
import { AuthError } from './errors.js';
import { keyMatches, parseKey } from './keys.js';
import type { Grants } from './scopes.js';
import type { KeyStore } from './store.js';

/** Who a request comes from: a valid, unrevoked key. */
export interface Principal {
  readonly keyId: string;
  readonly name: string;
  readonly grants: Grants;
  readonly limits: ApiKeyLimits | undefined;
  /** The CloudEvents Auth Context its commands carry. */
  readonly auth: AuthContext;
}

/** The WebSocket subprotocol a browser offers (with `switchyard.v1`) to present a key: `switchyard.bearer.<key>`. */
export const BEARER_SUBPROTOCOL_PREFIX = 'switchyard.bearer.';
/** The subprotocol ws-fanout selects when a client offers it. */
export const STREAM_SUBPROTOCOL = 'switchyard.v1';

const BEARER = /^Bearer +(\S+) *$/i;

/** Never longer than this is looked at: a key is 63 characters. */
const MAX_CREDENTIAL_LENGTH = 512;

/**
 * The key a request presents: `Authorization: Bearer <key>`, or — on a WebSocket upgrade, where browsers cannot
 * set headers — a `switchyard.bearer.<key>` entry of `Sec-WebSocket-Protocol`. Never a query parameter: URLs end
 * up in access logs. Undefined when nothing is presented; throws AUTH_MALFORMED when something is, badly.
 */
export function presentedKey(headers: IncomingHttpHeaders, options: { subprotocol?: boolean } = {}): string | undefined {
  const header = headers.authorization;
  if (header !== undefined) {
    if (header.length > MAX_CREDENTIAL_LENGTH) throw new AuthError('AUTH_MALFORMED', 'Authorization: too long for a key');
    const match = BEARER.exec(header);
    if (match === null) throw new AuthError('AUTH_MALFORMED', 'Authorization: expected "Bearer <key>"', { details: { field: 'Authorization' } });
    return match[1];
  }
  if (options.subprotocol !== true) return undefined;
  const offered = headers['sec-websocket-protocol'];
  if (offered === undefined) return undefined;
  if (offered.length > MAX_CREDENTIAL_LENGTH * 2) throw new AuthError('AUTH_MALFORMED', 'Sec-WebSocket-Protocol: too long');
  const bearer = offered
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith(BEARER_SUBPROTOCOL_PREFIX));
  if (bearer.length === 0) return undefined;
  if (bearer.length > 1) throw new AuthError('AUTH_MALFORMED', 'Sec-WebSocket-Protocol: more than one switchyard.bearer.<key>', { details: { field: 'Sec-WebSocket-Protocol' } });
  return bearer[0]!.slice(BEARER_SUBPROTOCOL_PREFIX.length);
}

/** Checks presented keys against the key store. */
export class Authenticator {
  private readonly store: Pick<KeyStore, 'get' | 'isLoaded'>;

  constructor(store: Pick<KeyStore, 'get' | 'isLoaded'>) {
    this.store = store;
  }

  /** The principal a request's headers present; throws AuthError (401, or 503 while keys are loading). */
  fromHeaders(headers: IncomingHttpHeaders, options: { subprotocol?: boolean } = {}): Principal {
    const key = presentedKey(headers, options);
    if (key === undefined) throw new AuthError('AUTH_MISSING', 'no credentials: send Authorization: Bearer <key>', { details: { field: 'Authorization' } });
    return this.fromKey(key);
  }

  /** The principal a key stands for; throws AuthError. The key itself never appears in the error. */
  fromKey(text: string): Principal {
    const parsed = parseKey(text);
    if (parsed === undefined) throw new AuthError('AUTH_MALFORMED', 'the key is not of the shape sy_<16 hex>_<43 base64url>', { details: { field: 'Authorization' } });
    if (!this.store.isLoaded) throw new AuthError('AUTH_KEYS_UNAVAILABLE', 'api keys are not loaded yet; retry shortly');
    const stored = this.store.get(parsed.keyId);
    if (stored === undefined || !keyMatches(parsed.key, stored.record.hash)) {
      throw new AuthError('AUTH_KEY_UNKNOWN', `unknown key ${parsed.keyId} (or a wrong secret)`, { details: { field: 'Authorization' } });
    }
    const { record } = stored;
    if (record.revokedAt !== undefined) throw new AuthError('AUTH_KEY_REVOKED', `key ${record.keyId} was revoked at ${record.revokedAt}`, { details: { field: 'Authorization' } });
    return { keyId: record.keyId, name: record.name, grants: stored.grants, limits: record.limits, auth: { type: 'api_key', id: record.keyId } };
  }
}
