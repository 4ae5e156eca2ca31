export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** The header that presents an API key. */
export function bearer(key: string): { authorization: string } {
  return { authorization: `Bearer ${key}` };
}

/** POST /v1/commands with a JSON body (or a raw string, for malformed bodies), presenting `key` (none: undefined). */
export async function postCommand(apiUrl: string, key: string | undefined, body: unknown): Promise<Answer> {
  const response = await fetch(`${apiUrl}/v1/commands`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key === undefined ? {} : bearer(key)) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
