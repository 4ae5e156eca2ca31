import {
  createServiceApp,
  type FastifyInstance,
  type ServiceAppOptions,
} from '@switchyard/service-runtime';
import type { CommandIntake } from './intake.js';

export interface AppDeps extends ServiceAppOptions {
  readonly intake: Pick<CommandIntake, 'submit'>;
}

/**
 * Ops endpoints plus `POST /v1/commands`: validates a command and writes it to the commands topic; answers 202
 * with its ids once Kafka has acknowledged it. The result arrives later on the command-results topic.
 */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = createServiceApp(deps);
  app.post('/v1/commands', async (request, reply) => {
    const traceparent = request.headers['traceparent'];
    const receipt = await deps.intake.submit(request.body, typeof traceparent === 'string' ? traceparent : undefined);
    return reply.code(202).send(receipt);
  });
  return app;
}
