/** src/agent: the per-node daemon (see agent.ts for the wiring diagram). */
export { Agent, DEFAULT_AGENT_CONFIG } from './agent.js';
export type { AgentConfig } from './agent.js';
export type { EndpointSpec } from './endpoints.js';
