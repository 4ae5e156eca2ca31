import { errors, type Dispatcher } from 'undici';
import type { ProbeOutcome } from './health.js';

/** Why a connection-level failure happened, as a short stable code. */
function failureReason(error: unknown): string {
  if (error instanceof errors.HeadersTimeoutError || error instanceof errors.BodyTimeoutError) return 'timeout';
  if (error instanceof errors.ConnectTimeoutError) return 'connect_timeout';
  if ((error as Error).name === 'AbortError' || (error as Error).name === 'TimeoutError') return 'timeout';
  const code = (error as { code?: string }).code ?? ((error as { cause?: { code?: string } }).cause?.code);
  if (code === 'ECONNREFUSED') return 'connection_refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection_reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'dns';
  return 'network_error';
}

/**
 * One GET of a health URL. 2xx/3xx is up; any status of 400 or above is a failure named by status (`http_503`);
 * a timeout or a refused connection is a failure named by cause. The body is read and dropped so the connection can be reused.
 */
export async function probe(dispatcher: Dispatcher, url: string, timeoutMs: number): Promise<ProbeOutcome> {
  const target = new URL(url);
  const started = performance.now();
  try {
    const response = await dispatcher.request({
      origin: target.origin,
      path: `${target.pathname}${target.search}`,
      method: 'GET',
      headers: { 'user-agent': 'switchyard-health-monitor', accept: '*/*' },
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    await response.body.dump({ limit: 64 * 1024 });
    const latencyMs = performance.now() - started;
    if (response.statusCode < 400) return { kind: 'ok', latencyMs, httpStatus: response.statusCode };
    return { kind: 'failed', latencyMs, httpStatus: response.statusCode, reason: `http_${response.statusCode}` };
  } catch (error) {
    return { kind: 'failed', latencyMs: null, httpStatus: null, reason: failureReason(error) };
  }
}
