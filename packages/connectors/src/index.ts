import { github } from './github/index.js';
import type { Connector } from './kit/types.js';

/** Every provider connector; adding a provider adds its folder and one line here. */
export const connectors: readonly Connector[] = [github];

export { connectionVariables, ConnectionsConfigError, loadConnections, type ConnectionConfig, type ConnectionsProblem } from './kit/config.js';
export { Connection, type ConnectionMetrics, type ConnectionOptions, type ConnectionPolicy, type ExecuteContext, type ExecutionOutcome } from './kit/connection.js';
export { badResponse, classifyFailure, retryAfterMs, retryDelayMs, serverError, shouldRetry, UpstreamError, type ResponseHeaders, type RetryDelays } from './kit/errors.js';
export { handlerFor, type CommandContext, type CommandHandler, type Connector, type ConnectionSettings, type EntityState, type Idempotency, type LookupRequester, type LookupResult, type ProviderAnswer, type ProviderRequest } from './kit/types.js';
export { github };
export { classifyGithubAnswer, commandMarker, issueState, rateLimitWaitMs, SECONDARY_LIMIT_MIN_WAIT_MS } from './github/index.js';
