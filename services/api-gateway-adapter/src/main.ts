import { bootService } from '@switchyard/service-runtime';
import { loadApiGatewayAdapterConfig } from './config.js';
import { createAdapter, SERVICE } from './wiring.js';

const { config, logger, lifecycle, registry } = bootService(SERVICE, () => loadApiGatewayAdapterConfig(process.env));
const adapter = createAdapter(config, { logger, registry, lifecycle });
try {
  await adapter.start();
} catch (error) {
  lifecycle.fatal(error, 'start failed');
}
