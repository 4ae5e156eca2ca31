export interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** POST /v1/commands with a JSON body (or a raw string, for malformed bodies). */
export async function postCommand(apiUrl: string, body: unknown): Promise<Answer> {
  const response = await fetch(`${apiUrl}/v1/commands`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
