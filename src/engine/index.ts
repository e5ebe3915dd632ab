/** The upgrade engine as the server and the tests use it: the facade and the types they configure it with. */
export { Engine } from './engine.js';
export type { CreatedJoinToken, NodeReset } from './agents/index.js';
export { SecretBox } from './secrets.js';
export type { DriverRegistry, DriverServices, EngineObserver, EngineOptions, Logger } from './types.js';
