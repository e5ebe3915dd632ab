import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse, stringify } from 'yaml';
import { CliError, ExitCode } from './errors.js';

/**
 * The CLI's own configuration: named contexts (a server and a token each) and the
 * current one, as kubectl keeps clusters in a kubeconfig. It lives in
 * `$UPSHIFT_CONFIG_FILE`, else `$XDG_CONFIG_HOME/upshift/config.yaml`, else
 * `~/.config/upshift/config.yaml`; it holds tokens, so it is written with mode 0600.
 *
 * ```yaml
 * current-context: prod
 * contexts:
 *   prod:
 *     server: https://upshift.example.com
 *     token: ups_…
 * ```
 */
export interface ContextEntry {
  server?: string;
  token?: string;
}

export interface CliConfig {
  currentContext: string | undefined;
  contexts: Record<string, ContextEntry>;
}

export function configFilePath(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env['UPSHIFT_CONFIG_FILE'];
  if (explicit) return explicit;
  const base = env['XDG_CONFIG_HOME'] || join(homedir(), '.config');
  return join(base, 'upshift', 'config.yaml');
}

const contextNamePattern = /^[A-Za-z0-9][A-Za-z0-9._@:-]{0,62}$/;

export function validateContextName(name: string): string {
  if (!contextNamePattern.test(name)) {
    throw new CliError(ExitCode.usage, `context name ${JSON.stringify(name)} is not valid: use letters, digits and . _ @ : - (up to 63)`);
  }
  return name;
}

function invalidConfig(file: string, what: string): CliError {
  return new CliError(ExitCode.usage, `${file}: ${what}`, { hint: 'fix or remove the file; `upshift config set-context` rewrites it' });
}

/** Reads the config file; a missing file is an empty config, an invalid one an error that names the key. */
export function readConfig(file: string): CliConfig {
  if (!existsSync(file)) return { currentContext: undefined, contexts: {} };
  let raw: unknown;
  try {
    raw = parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw invalidConfig(file, `not valid YAML: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (raw === null || raw === undefined) return { currentContext: undefined, contexts: {} };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw invalidConfig(file, 'must be a mapping with current-context and contexts');
  const record = raw as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== 'current-context' && key !== 'contexts')
      throw invalidConfig(file, `unknown key ${JSON.stringify(key)}; known: current-context, contexts`);
  }
  const current = record['current-context'];
  if (current !== undefined && current !== null && typeof current !== 'string')
    throw invalidConfig(file, 'current-context must be a context name');
  const contexts: Record<string, ContextEntry> = {};
  const rawContexts = record['contexts'] ?? {};
  if (rawContexts === null || typeof rawContexts !== 'object' || Array.isArray(rawContexts))
    throw invalidConfig(file, 'contexts must be a mapping of name to {server, token}');
  for (const [name, value] of Object.entries(rawContexts as Record<string, unknown>)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw invalidConfig(file, `contexts.${name} must be a mapping with server and token`);
    const entry: ContextEntry = {};
    for (const [key, field] of Object.entries(value as Record<string, unknown>)) {
      if (key !== 'server' && key !== 'token')
        throw invalidConfig(file, `contexts.${name}.${key} is not a known key; known: server, token`);
      if (typeof field !== 'string') throw invalidConfig(file, `contexts.${name}.${key} must be a string`);
      entry[key] = field;
    }
    contexts[name] = entry;
  }
  return { currentContext: typeof current === 'string' ? current : undefined, contexts };
}

/** Writes the config atomically (temporary file, then rename), readable by its owner only. */
export function writeConfig(file: string, config: CliConfig): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const document: Record<string, unknown> = {};
  if (config.currentContext !== undefined) document['current-context'] = config.currentContext;
  document['contexts'] = config.contexts;
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, stringify(document), { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
}
