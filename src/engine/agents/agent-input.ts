import { createHash } from 'node:crypto';
import type { AgentFacts } from '../../domain/agent-protocol.js';
import type { ComponentVersions } from '../../domain/components.js';
import { DISTRIBUTION_PATTERN } from '../../domain/catalog.js';
import { isComponent } from '../../domain/components.js';
import { invalid } from '../../domain/errors.js';
import { type TextShape, stripControls } from '../../domain/text.js';
import { isValidVersion } from '../../domain/versions.js';

/** Text an agent sent, as the server keeps it: no control characters (domain/text.ts), at most `max` characters. */
export function agentText(value: string, max: number, shape: TextShape = {}): string {
  return stripControls(value.slice(0, max), shape);
}

/** Join tokens and node credentials are kept as their sha256 only. */
export const hashSecret = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

/**
 * What an agent reports about its host, as the server keeps it: known keys only,
 * versions that are valid version strings, and text without control characters (it
 * reaches events, the API and operators' terminals; see domain/text.ts).
 */
export function checkFacts(raw: unknown): AgentFacts {
  if (typeof raw !== 'object' || raw === null) throw invalid('facts must be an object');
  const facts = raw as Record<string, unknown>;
  const versions: ComponentVersions = {};
  const reported = facts['versions'];
  if (typeof reported === 'object' && reported !== null) {
    for (const [key, value] of Object.entries(reported)) {
      if (!isComponent(key)) continue;
      if (typeof value !== 'string' || !isValidVersion(value)) throw invalid(`facts.versions.${key} is not a valid version`);
      versions[key] = value;
    }
  }
  const distribution = facts['distribution'];
  if (distribution !== undefined && (typeof distribution !== 'string' || !DISTRIBUTION_PATTERN.test(distribution))) {
    throw invalid('facts.distribution must be ID-VERSION_ID from os-release in lower case, such as debian-13');
  }
  const text = (key: string, max: number) => (typeof facts[key] === 'string' ? agentText(facts[key] as string, max) : '');
  return {
    hostname: text('hostname', 200),
    os: text('os', 200),
    ...(typeof distribution === 'string' ? { distribution } : {}),
    arch: text('arch', 200),
    agentVersion: text('agentVersion', 200),
    versions,
    engineReachable: facts['engineReachable'] === true,
    ...(typeof facts['engineError'] === 'string' ? { engineError: text('engineError', 500) } : {}),
  };
}

/** The versions a node runs by its agent's report: the components it reports, and the agent's own version. */
export function reportedVersions(base: ComponentVersions, facts: AgentFacts): ComponentVersions {
  return { ...base, ...facts.versions, ...(isValidVersion(facts.agentVersion) ? { agent: facts.agentVersion } : {}) };
}
