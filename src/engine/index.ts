/** The upgrade engine as the server and the tests use it: the facade and the types they configure it with. */
export { Engine } from './engine.js';
export type { DriverRegistry, EngineObserver, EngineOptions, Logger } from './types.js';
