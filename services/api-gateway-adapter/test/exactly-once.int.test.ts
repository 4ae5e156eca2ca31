import { topics as catalog, type TopicEvent, type Topics } from '@switchyard/events';
import { createGithubSimulator } from '@switchyard/simulators';
import { test, uniqueName, waitFor, type EventCollector } from '@switchyard/testkit';
import { describe, expect } from 'vitest';
import { command, postCommand, SIM_SERVER_TIMEOUT_MS, SIM_TOKEN, startAdapter } from './harness.js';

/**
 * Commands carried out exactly once at the provider, counted where it matters: issues in the simulator, one per
 * command, each carrying its own command's marker; one terminal result per command.
 */

type ResultEvent = TopicEvent<Topics['commandResults']>;

const REPO = 'acme/widgets';
const ISSUES_ROUTE = '/repos/{owner}/{repo}/issues';
const MARKER = /<!-- switchyard:command (\S+) -->/;

/** The command id each simulator issue was created by, from the marker in its body. */
function markers(issues: readonly Record<string, unknown>[]): string[] {
  return issues.map((issue) => MARKER.exec(typeof issue['body'] === 'string' ? issue['body'] : '')?.[1] ?? '(no marker)');
}

function terminal(results: EventCollector<Topics['commandResults']>, ids: ReadonlySet<string>): ResultEvent[] {
  return results.events.filter((event) => ids.has(event.data.commandId) && event.data.status !== 'accepted');
}

async function waitForTerminal(results: EventCollector<Topics['commandResults']>, ids: ReadonlySet<string>, timeoutMs = 60000): Promise<void> {
  await waitFor(() => new Set(terminal(results, ids).map((event) => event.data.commandId)).size === ids.size, {
    timeoutMs,
    intervalMs: 100,
    what: `a terminal result for each of ${ids.size} commands`,
  });
}

describe('exactly once at the provider', () => {
  test('the same request with one Idempotency-Key sent 200 times at once to two instances: one command id in every answer, one issue', async ({
    brokers,
    topics,
    collect,
  }) => {
    const sim = createGithubSimulator({ tokens: [SIM_TOKEN], repos: [REPO], serverTimeoutMs: SIM_SERVER_TIMEOUT_MS });
    const shared = { sim, url: await sim.listen() };
    const env = { KAFKA_GROUP_ID: uniqueName('agw-two-') };
    const [first, second] = await Promise.all([startAdapter({ brokers, topics }, { shared, env }), startAdapter({ brokers, topics }, { shared, env })]);
    try {
      const [commands, results] = await Promise.all([collect(catalog.commands), collect(catalog.commandResults)]);
      const body = { type: 'github.issue.create', input: { owner: 'acme', repo: 'widgets', title: 'Only once' } };
      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, index) => postCommand(index % 2 === 0 ? first : second, body, { 'idempotency-key': 'only-once-1' })),
      );
      expect(new Set(answers.map((answer) => answer.status))).toEqual(new Set([202]));
      const ids = new Set(answers.map((answer) => String(answer.body['commandId'])));
      expect(ids.size).toBe(1);
      const [id] = [...ids];
      expect(answers.filter((answer) => answer.headers.get('idempotent-replayed') === 'true').length).toBeGreaterThanOrEqual(198);

      await waitForTerminal(results, ids);
      // A repeat after the command finished is answered from Kafka too, by either instance.
      for (const target of [first, second]) {
        const late = await postCommand(target, body, { 'idempotency-key': 'only-once-1' });
        expect([late.status, late.body['commandId'], late.headers.get('idempotent-replayed')]).toEqual([202, id, 'true']);
      }
      // The same key for another command is refused, naming the header.
      const reused = await postCommand(second, { ...body, input: { ...body.input, title: 'Something else' } }, { 'idempotency-key': 'only-once-1' });
      expect(reused.status).toBe(422);
      expect(reused.body).toEqual({ error: { code: 'AGW_IDEMPOTENCY_KEY_REUSED', field: 'Idempotency-Key', message: expect.stringContaining(String(id)), retriable: false } });

      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(sim.control.issues(REPO).map((issue) => issue['title'])).toEqual(['Only once']);
      expect(markers(sim.control.issues(REPO))).toEqual([id]);
      expect(terminal(results, ids).map((event) => event.data.status)).toEqual(['succeeded']);
      // Each instance writes a key's command at most once; two racing on it write the same command id.
      const written = commands.events.filter((event) => event.id === id).length;
      expect(written).toBeGreaterThanOrEqual(1);
      expect(written).toBeLessThanOrEqual(2);
      console.log(`[exactly-once] 200 identical keyed requests over two instances: the command written ${written} time(s), 1 issue`);
    } finally {
      await Promise.all([first.stop(), second.stop()]);
      await sim.close();
    }
  });

  test.for([
    { name: '502 after', fault: { response: 502, when: 'after' } },
    { name: '504 after', fault: { response: 504, when: 'after' } },
    { name: 'destroy after', fault: { response: 'destroy', when: 'after' } },
    { name: 'a stall past the attempt timeout', fault: { response: 'stall', delayMs: 1200, when: 'after' } },
  ] as const)('100 creates whose answers are lost ($name): exactly 100 issues, every command succeeded with its own', { timeout: 120000 }, async ({ fault }, { brokers, topics, producer, collect }) => {
    // A hundred lost answers in a row would open the circuit, and commands not yet sent would fail fast as
    // AGW_UPSTREAM_CIRCUIT_OPEN (nothing sent); that is the breaker's test. This one is about the lost answers.
    const adapter = await startAdapter(
      { brokers, topics },
      { env: { COMMAND_ATTEMPT_TIMEOUT_MS: '600', GITHUB_MAX_CONNECTIONS: '64', GITHUB_MAX_CONCURRENCY: '64', CIRCUIT_FAILURE_THRESHOLD: '1000' } },
    );
    try {
      const results = await collect(catalog.commandResults);
      adapter.sim.control.injectFault({ ...fault, count: 100, method: 'POST', route: ISSUES_ROUTE });
      const built = Array.from({ length: 100 }, (_, index) => command('github.issue.create', { owner: 'acme', repo: 'widgets', title: `lost answer ${index}` }));
      await producer.send(catalog.commands, built.map((entry) => entry.envelope));
      const ids = new Set(built.map((entry) => entry.receipt.commandId));
      await waitForTerminal(results, ids, 90000);

      const finals = terminal(results, ids);
      expect(finals.filter((event) => event.data.status !== 'succeeded').map((event) => event.data.error?.code)).toEqual([]);
      expect(finals).toHaveLength(100);
      const issues = adapter.sim.control.issues(REPO);
      expect(issues).toHaveLength(100);
      expect(adapter.sim.control.counters().issuesCreated).toBe(100);
      // Every issue is its own command's, and every command's result names the issue that carries its marker.
      const byCommand = new Map(issues.map((issue) => [MARKER.exec(String(issue['body']))?.[1], issue]));
      expect([...byCommand.keys()].sort()).toEqual([...ids].sort());
      for (const result of finals) {
        expect(result.data.entity?.entityId).toBe(`${REPO}#${String(byCommand.get(result.data.commandId)?.['number'])}`);
        expect(result.data.foundExisting).toBe(true);
      }
      expect(adapter.sim.control.pendingFaults()).toEqual([]);
    } finally {
      await adapter.stop();
    }
  });

  test('updates to one issue interleaved with load on others, run concurrently, are applied in order: the last one wins', async ({ brokers, topics, producer, collect }) => {
    const adapter = await startAdapter({ brokers, topics }, { env: { COMMAND_CONCURRENCY: '32' } });
    try {
      const [results, entities] = await Promise.all([collect(catalog.commandResults), collect(catalog.entities)]);
      // The issue under test, and a few others for load.
      const seeds = Array.from({ length: 5 }, (_, index) => command('github.issue.create', { owner: 'acme', repo: 'widgets', title: `seed ${index}` }));
      await producer.send(catalog.commands, seeds.map((entry) => entry.envelope));
      await waitForTerminal(results, new Set(seeds.map((entry) => entry.receipt.commandId)));
      adapter.sim.control.setLatency(3);

      const updates = Array.from({ length: 60 }, (_, index) => command('github.issue.update', { owner: 'acme', repo: 'widgets', number: 1, title: `v${index + 1}` }));
      const others = Array.from({ length: 300 }, (_, index) =>
        index % 3 === 0
          ? command('github.issue.create', { owner: 'acme', repo: 'widgets', title: `load ${index}` })
          : command('github.issue.update', { owner: 'acme', repo: 'widgets', number: 2 + (index % 4), body: `load ${index}` }),
      );
      // Interleaved as one producer writes them: each update to #1 between five others.
      const order = updates.flatMap((update, index) => [update, ...others.slice(index * 5, index * 5 + 5)]);
      for (let from = 0; from < order.length; from += 40) {
        await producer.send(catalog.commands, order.slice(from, from + 40).map((entry) => entry.envelope));
      }
      const ids = new Set(order.map((entry) => entry.receipt.commandId));
      await waitForTerminal(results, ids, 90000);
      expect(terminal(results, ids).filter((event) => event.data.status !== 'succeeded')).toEqual([]);

      expect(adapter.sim.control.issue(REPO, 1)?.['title']).toBe('v60');
      // The states GitHub answered with, as the entity events carry them, in the order the updates were written.
      const titles = entities.events
        .filter((event) => event.data.entityId === `${REPO}#1` && updates.some((update) => update.receipt.commandId === event.causationid))
        .map((event) => (event.data.state as { title: string }).title);
      expect(titles).toEqual(updates.map((_, index) => `v${index + 1}`));
      // And every other update succeeded too.
      expect(await adapter.registry.getSingleMetricAsString('switchyard_commands_total')).toMatch(/type="github.issue.update"[^\n]*status="succeeded"[^\n]*\} 260/);
    } finally {
      adapter.sim.control.setLatency(0);
      await adapter.stop();
    }
  });
});
