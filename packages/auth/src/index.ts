export { Authenticator, BEARER_SUBPROTOCOL_PREFIX, presentedKey, STREAM_SUBPROTOCOL, type Principal } from './authenticate.js';
export { CommandBudget, type BudgetDecision } from './budget.js';
export { AuthError, authErrors, bearerChallenge, type AuthErrorCode } from './errors.js';
export { describeRequirement, guard, principalOf, type RouteAuth } from './guard.js';
export { hashKey, KEY_PATTERN, keyMatches, mintKey, parseKey, type MintedKey, type ParsedKey } from './keys.js';
export { KeyManager, keyView, NewKeyRequest, type CreatedKey, type KeyView } from './manager.js';
export { Grants, scopeProblem, type Requirement, type Scope } from './scopes.js';
export { serviceAuth, type ServiceAuth, type ServiceAuthDeps } from './service.js';
export { KeyStore, type KeyListener, type StoredKey } from './store.js';
