import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PRODUCT_VERSION } from '../../src/domain/product-version.js';
import { repoRoot } from '../support/server.js';
import { cliPath } from '../support/cli.js';

describe('--version', () => {
  it('prints the product version, from upshift and from the standalone agents the build writes (script and executable)', () => {
    for (const file of [cliPath, join(repoRoot, 'dist/agent.js')]) {
      const r = spawnSync(process.execPath, [file, '--version'], { encoding: 'utf8' });
      expect({ file, status: r.status, stdout: r.stdout }).toEqual({ file, status: 0, stdout: `${PRODUCT_VERSION}\n` });
    }
    const exe = join(repoRoot, 'dist/agent/upshift-agent-linux-x64');
    const r = spawnSync(exe, ['--version'], { encoding: 'utf8' });
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 0, stdout: `${PRODUCT_VERSION}\n` });
  });
});
