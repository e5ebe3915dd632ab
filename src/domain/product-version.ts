/**
 * Upshift's version, written here and nowhere else in the code: `upshift --version`, the
 * server's OpenAPI `info.version`, and the newest `agent` of the built-in catalog (an
 * agent is built from the same source as the server, so a fleet upgraded to the newest
 * agent runs this version; see src/agent/agent-version.ts). `package.json`'s `version`
 * must say the same: test/domain/product-version.test.ts fails when the two differ.
 */
export const PRODUCT_VERSION = '1.1.0';
