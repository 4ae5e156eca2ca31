# syntax=docker/dockerfile:1
# One build for every Switchyard process; each is a target of the same runtime image:
#   docker build --target sync-worker -t switchyard/sync-worker .
# docker-compose.yml builds and runs them all. test/compose.unit.test.ts checks each target's folder and entry
# against infra/src/stack.ts, and that every workspace package a target needs has its dist/ copied below.

FROM node:24-slim AS base
RUN npm install --global pnpm@10
WORKDIR /app

# Production dependencies only. `pnpm fetch` reads the lockfile alone, so this layer survives source changes.
FROM base AS prod-deps
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
COPY patches ./patches
RUN pnpm fetch --prod
COPY . .
RUN pnpm install --frozen-lockfile --offline --prod

# Every dependency, to compile the TypeScript (tsc -b).
FROM base AS build
COPY pnpm-lock.yaml pnpm-workspace.yaml ./
COPY patches ./patches
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline
RUN pnpm run build

# Sources, production node_modules (sync-worker's migrations/ included), and the compiled output.
FROM base AS runtime
ENV NODE_ENV=production
COPY --from=prod-deps /app /app
COPY --from=build /app/packages/events/dist /app/packages/events/dist
COPY --from=build /app/packages/api/dist /app/packages/api/dist
COPY --from=build /app/packages/auth/dist /app/packages/auth/dist
COPY --from=build /app/packages/connectors/dist /app/packages/connectors/dist
COPY --from=build /app/packages/kafka/dist /app/packages/kafka/dist
COPY --from=build /app/packages/service-runtime/dist /app/packages/service-runtime/dist
COPY --from=build /app/packages/simulators/dist /app/packages/simulators/dist
COPY --from=build /app/services/api-gateway-adapter/dist /app/services/api-gateway-adapter/dist
COPY --from=build /app/services/sync-worker/dist /app/services/sync-worker/dist
COPY --from=build /app/services/health-monitor/dist /app/services/health-monitor/dist
COPY --from=build /app/services/ws-fanout/dist /app/services/ws-fanout/dist
USER node

FROM runtime AS github-simulator
WORKDIR /app/packages/simulators
EXPOSE 4010
CMD ["node", "dist/cli.js"]

FROM runtime AS api-gateway-adapter
WORKDIR /app/services/api-gateway-adapter
EXPOSE 8080
CMD ["node", "dist/main.js"]

FROM runtime AS sync-worker
WORKDIR /app/services/sync-worker
EXPOSE 8081
CMD ["node", "dist/main.js"]

FROM runtime AS health-monitor
WORKDIR /app/services/health-monitor
EXPOSE 8082
CMD ["node", "dist/main.js"]

FROM runtime AS ws-fanout
WORKDIR /app/services/ws-fanout
EXPOSE 8083
CMD ["node", "dist/main.js"]
