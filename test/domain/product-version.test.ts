import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { agentVersion } from '../../src/agent/agent-version.js';
import { defaultCatalog, latestVersion } from '../../src/domain/catalog.js';
import { PRODUCT_VERSION } from '../../src/domain/product-version.js';

describe('the product version', () => {
  it('is the version package.json names', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(PRODUCT_VERSION).toBe(pkg.version);
  });

  it('is the newest agent of the built-in catalog, and the version of an agent built without a stamp', () => {
    expect(latestVersion(defaultCatalog, 'agent')).toBe(PRODUCT_VERSION);
    expect(agentVersion()).toBe(PRODUCT_VERSION);
  });
});
