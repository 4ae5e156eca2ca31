import type { ProjectionName, TopicSpec } from '@switchyard/events';
import { apiHealthProjection } from './api-health.js';
import { commandLogProjection } from './command-log.js';
import { entitiesProjection } from './entities.js';
import type { Projection } from './types.js';

export const projections: Readonly<Record<ProjectionName, Projection>> = {
  entities: entitiesProjection,
  command_log: commandLogProjection,
  api_health: apiHealthProjection,
};

/** The catalog topics the worker consumes, each mapped to the projection it feeds. */
export function projectionsByTopic(): Map<TopicSpec, Projection> {
  const map = new Map<TopicSpec, Projection>();
  for (const projection of Object.values(projections)) for (const topic of projection.topics) map.set(topic, projection);
  return map;
}

export { runStatements, type PositionedEvent, type Projection, type Statement, type TableMap } from './types.js';
