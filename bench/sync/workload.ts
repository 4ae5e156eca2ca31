import { createEvent, entityVersion, type Envelope } from '@switchyard/events';

/**
 * The benchmark workload: GitHub issue upserts with realistic state (~0.8 KB of JSON each). `round` 0 creates
 * `keys` issues; each later round updates every one of them with a newer version.
 */
export function issueEvents(keys: number, round: number, offset = 0): Envelope[] {
  const events: Envelope[] = [];
  const seconds = 1_790_000_000 + round * 60;
  for (let i = 0; i < keys; i += 1) {
    const number = offset + i + 1;
    const version = entityVersion(BigInt(seconds) * 1_000_000n, BigInt(seconds) * 1_000_000n + BigInt(number));
    const updatedAt = new Date(seconds * 1000).toISOString().replace('.000', '');
    events.push(
      createEvent({
        type: 'github.issue.upserted',
        source: 'switchyard/bench',
        subject: `github:issue:acme/widgets#${number}`,
        entityVersion: version,
        data: {
          source: 'github',
          entityType: 'issue',
          entityId: `acme/widgets#${number}`,
          version,
          origin: { kind: 'poll', id: `bench-${round}`, connection: 'github' },
          state: {
            id: 9_000_000 + number,
            node_id: `I_kwDOBench${number.toString(36)}`,
            number,
            title: `Widget ${number} fails to render when the locale is set (round ${round})`,
            body: 'Steps to reproduce:\n1. Set the locale\n2. Open the widget\n\nExpected: it renders. Actual: a blank panel.',
            state: round % 2 === 0 ? 'open' : 'closed',
            state_reason: null,
            labels: [
              { id: 1, name: 'bug', color: 'd73a4a' },
              { id: 2, name: `area-${number % 7}`, color: '0e8a16' },
            ],
            assignees: [{ login: 'octocat', id: 583231 }],
            user: { login: 'hubot', id: 7 },
            comments: round,
            html_url: `https://github.com/acme/widgets/issues/${number}`,
            repository_url: 'https://api.github.com/repos/acme/widgets',
            created_at: '2026-11-01T09:00:00Z',
            updated_at: updatedAt,
            closed_at: round % 2 === 0 ? null : updatedAt,
          },
        },
      }),
    );
  }
  return events;
}
