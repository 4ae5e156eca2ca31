// What works outside vitest (benchmarks, scripts): no fixtures here, since they need a running test.
export { assertBuilt, isBuilt } from './built.js';
export { EventCollector } from './collector.js';
export { testLogger } from './logger.js';
export { ServiceProcess, type ServiceProcessOptions } from './processes.js';
export { freePort, uniqueName, waitFor, type WaitOptions } from './wait.js';
