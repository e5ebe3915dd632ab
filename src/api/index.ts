/**
 * The API contract: TypeBox schemas of every request and answer of the HTTP API, and the
 * types derived from them. The server declares its routes with these schemas (requests
 * are validated and answers serialised through them, and /docs shows them); the CLI and
 * the console read the API with these types. This module imports only `domain` and
 * TypeBox, so that all three can import it. The enumerations the API uses come from
 * `domain`, each written once, and are re-exported here for the clients.
 *
 * Two files import nothing but `domain`: `enums.ts` (those enumerations) and `sse.ts` (the
 * event-stream parser). A client that needs their values imports them from there, so that
 * its bundle does not carry TypeBox and the schemas; it imports types from here.
 */
export * from './access.js';
export * from './agent.js';
export * from './artifacts.js';
export * from './catalog.js';
export * from './clusters.js';
export * from './common.js';
export * from './enums.js';
export * from './errors.js';
export * from './events.js';
export * from './join-tokens.js';
export * from './maintenance-window.js';
export * from './service.js';
export * from './sse.js';
export * from './upgrades.js';
export * from './webhooks.js';
