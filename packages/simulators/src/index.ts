export {
  createGithubSimulator,
  type GithubSimulator,
  type GithubSimulatorControl,
  type GithubSimulatorOptions,
  type SimCounters,
} from './github/simulator.js';
export { FaultSpec, SimMode, type Fault } from './github/faults.js';
export type { RateLimitSnapshot } from './github/rate-limit.js';
export { loadSimulatorConfig, type SimulatorConfig } from './config.js';
