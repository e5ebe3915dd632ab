/** The server's side of the agent protocol: the hub and the types its callers see. */
export { AgentHub, type AgentHubOptions, type AgentHubSettings } from './agent-hub.js';
export { type CreatedJoinToken, type NodeReset } from './node-identity.js';
