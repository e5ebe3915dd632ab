// Whole on purpose (~420 lines): one procedure with its rollback and resume, read top to bottom; every step shares the journal's `Prepared` record.
import { copyFile, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AgentTask, TaskArtifact, TaskResultRequest, UpgradeTaskParams } from '../../domain/agent-protocol.js';
import type { ComponentVersions } from '../../domain/components.js';
import { sameRelease } from '../../domain/versions.js';
import type { InstallMethodName } from '../config.js';
import { outputTail, runCommand } from '../../platform/run-command.js';
import { FactCollector } from '../facts.js';
import type { JournalEntry } from '../journal.js';
import { taskKeyFileName, validateUpgradeParams } from '../params.js';
import { configureAptMirror, parseAptSimulation } from './apt-mirror.js';
import {
  aptInstall,
  aptSimulate,
  cachedDeb,
  currentTarget,
  debPackageName,
  dpkgPurge,
  flipCurrent,
  flipCurrentTo,
  freeBytes,
  installedPackageVersions,
  packagesToPurge,
  pruneVersions,
  unpackBinary,
  versionDir,
} from './install.js';
import { controlService } from './service.js';
import type { RuntimeDefinition } from './runtime-definitions.js';
import type { Recipe, RecipeContext } from './types.js';
import { StepError } from './types.js';

/** What preflight and backup found; kept in the journal so a rollback works after a restart. */
interface Prepared {
  fromVersion: string | undefined;
  toVersion: string;
  method: InstallMethodName;
  previousTarget?: string;
  previousPackages?: Record<string, string>;
  installTargets?: string[];
  /** deb: the previous versions' package files, kept in the backup for a rollback with dpkg. */
  rollbackDebs?: string[];
  /** deb/apt: packages the install adds that were not installed before; a rollback removes them. */
  addedPackages?: string[];
  /** Those of `addedPackages` dpkg had no trace of (no configuration files left): purged, not only removed. */
  purgeOnRollback?: string[];
  backupDir: string;
  configBackups: { file: string; backup: string }[];
  workloads: string[];
}

const stepOfCheckpoint: Record<string, string> = { stopping: 'stop', installing: 'install', starting: 'start', verifying: 'verify' };

/**
 * The procedure of every runtime upgrade; what differs between components is their
 * `RuntimeDefinition` (runtime-definitions.ts):
 *
 *   preflight  free disk space, the artifact fetched and its sha256 checked, a binary tree
 *              unpacked and its version checked, the current version read, preflight hooks
 *   backup     daemon configuration files, container list and inspect JSON, versions
 *              (`<dataDir>/backups/<task>/`), beforeStop hooks
 *   stop       the service (systemd, or the host's own commands)
 *   install    binary: flip `<installRoot>/current`; deb: apt-get install of the mirror's
 *              files; apt: apt-get install PKG=VERSION; apt resolves the dependencies
 *              (from the server's signed apt repository with aptSource: mirror), dpkg
 *              installs
 *   start      the service, then wait until it answers
 *   verify     the target version runs; containers with a restart policy run again;
 *              afterStart hooks
 *
 * A failure from stop on rolls back: stop, the previous tree or package versions back
 * (every package the install changed back to its version: deb, from the previous
 * versions' own files kept in the backup where the host had them; else pinned with apt),
 * the configuration restored if it changed, start, and the previous version verified.
 * The result names the failing step and its output, and whether the rollback worked.
 */
export class RuntimeRecipe implements Recipe {
  constructor(private readonly def: RuntimeDefinition) {}

  private stepLog(ctx: RecipeContext, step: string) {
    return (line: string) => ctx.log(`[${step}] ${line}`);
  }

  private async hooks(
    ctx: RecipeContext,
    which: 'preflight' | 'beforeStop' | 'afterStart',
    params: UpgradeTaskParams,
    fromVersion: string | undefined,
  ): Promise<void> {
    for (const argv of ctx.config.hooks[which]) {
      ctx.log(`[hook ${which}] ${argv.join(' ')}`);
      const r = await runCommand(argv, {
        timeoutMs: ctx.config.timeouts.hookSeconds * 1000,
        env: {
          UPSHIFT_COMPONENT: this.def.component,
          UPSHIFT_FROM_VERSION: fromVersion ?? '',
          UPSHIFT_TO_VERSION: params.toVersion,
          UPSHIFT_TASK_KEY: ctx.taskKey,
          UPSHIFT_HOOK: which,
        },
        onLine: (l) => ctx.log(`[hook ${which}]   ${l}`),
      });
      if (r.code !== 0 || r.timedOut) throw new Error(`the ${which} hook failed: ${outputTail(r)}`);
    }
  }

  private chooseArtifacts(ctx: RecipeContext, params: UpgradeTaskParams): { method: InstallMethodName; artifacts: TaskArtifact[] } {
    const comp = ctx.config.components[this.def.component];
    for (const method of comp.methods) {
      const matching = params.artifacts.filter((a) => a.method === method);
      if (matching.length === 0) continue;
      return { method, artifacts: method === 'binary' ? matching.slice(0, 1) : matching };
    }
    const offered = [...new Set(params.artifacts.map((a) => a.method))].join(', ') || 'nothing';
    throw new StepError(
      'preflight',
      `no usable artifact for ${this.def.displayName} ${params.toVersion}: the server offers ${offered}; this host installs with ${comp.methods.join(', ')} (components.${this.def.component}.methods in the agent config)`,
    );
  }

  private async preflight(ctx: RecipeContext, params: UpgradeTaskParams): Promise<Prepared | { alreadyCurrent: string }> {
    const log = this.stepLog(ctx, 'preflight');
    const comp = ctx.config.components[this.def.component];
    const fromVersion = await this.def.currentVersion(ctx.config);
    log(`${this.def.displayName} now: ${fromVersion ?? 'not found'}; target: ${params.toVersion}`);
    if (fromVersion !== undefined && sameRelease(fromVersion, params.toVersion)) return { alreadyCurrent: fromVersion };
    const { method, artifacts } = this.chooseArtifacts(ctx, params);
    log(`install method: ${method} (${artifacts.map((a) => a.file ?? `${a.package}=${a.packageVersion}`).join(', ')})`);
    const minFree = ctx.config.minFreeMegabytes * 1024 * 1024;
    const free = freeBytes(ctx.config.dataDir);
    if (free < minFree) {
      throw new Error(
        `only ${Math.round(free / 1048576)} MiB free under ${ctx.config.dataDir}; at least ${ctx.config.minFreeMegabytes} MiB are needed (minFreeMegabytes)`,
      );
    }
    const files: string[] = [];
    let size = 0;
    for (const a of artifacts) {
      if (a.file === undefined || a.sha256 === undefined) continue;
      log(`fetching ${a.file} from the mirror`);
      const local = await ctx.artifacts.fetch(a.file, a.sha256, ctx.signal);
      const st = await stat(local);
      size += st.size;
      log(`${a.file}: ${st.size} bytes, sha256 ${a.sha256} verified`);
      files.push(local);
    }
    const prepared: Prepared = {
      fromVersion,
      toVersion: params.toVersion,
      method,
      backupDir: path.join(ctx.config.dataDir, 'backups', taskKeyFileName(ctx.taskKey)),
      configBackups: [],
      workloads: [],
    };
    switch (method) {
      case 'binary': {
        const root = comp.installRoot as string;
        const need = size * 3;
        if (freeBytes(root) < need)
          throw new Error(
            `${root} has ${Math.round(freeBytes(root) / 1048576)} MiB free; unpacking needs about ${Math.round(need / 1048576)} MiB`,
          );
        const archive = files[0];
        if (archive === undefined) throw new Error('the binary artifact has no file');
        const prev = await currentTarget(root);
        if (prev === undefined) log(`${root}/current does not exist yet: a first install, nothing to roll back to`);
        prepared.previousTarget = prev;
        const dir = await unpackBinary(archive, root, params.toVersion, this.def.requiredBinaries, log);
        const staged = await this.def.stagedVersion(dir);
        if (staged === undefined || !sameRelease(staged, params.toVersion)) {
          if (path.resolve(root, prev ?? '') !== dir) await rm(dir, { recursive: true, force: true });
          throw new Error(`the archive holds ${this.def.displayName} ${staged ?? '(version unreadable)'}, not ${params.toVersion}`);
        }
        log(`unpacked ${this.def.displayName} ${staged} into ${dir}`);
        break;
      }
      case 'deb':
      case 'apt': {
        if (method === 'deb' && freeBytes('/var') < size * 3)
          throw new Error(`/var has too little free space for ${Math.round(size / 1048576)} MiB of packages`);
        if (ctx.config.aptSource === 'mirror') {
          const access = ctx.artifacts.aptMirror?.();
          if (!access) throw new Error('aptSource is mirror, but this agent has no Upshift server to install from');
          await configureAptMirror(access, log, ctx.signal);
        }
        const names: string[] = [];
        if (method === 'deb') for (const f of files) names.push(await debPackageName(f));
        else names.push(...artifacts.map((a) => a.package as string));
        prepared.installTargets = method === 'deb' ? files : artifacts.map((a) => `${a.package}=${a.packageVersion}`);
        // Every package the install upgrades, downgrades or removes (apt resolves the
        // dependencies) goes back on a rollback, not only the ones named.
        const plan = parseAptSimulation(await aptSimulate(prepared.installTargets));
        const touched = [...new Set([...names, ...Object.keys(plan.changes)])];
        prepared.previousPackages = await installedPackageVersions(touched);
        // What the install adds is removed by a rollback, so the host's package set is
        // what it was (a named package may be new too: not installed before at all).
        const added = touched.filter((p) => prepared.previousPackages?.[p] === undefined);
        prepared.addedPackages = added;
        prepared.purgeOnRollback = await packagesToPurge(added);
        log(
          `apt will change ${Object.keys(plan.changes).join(', ') || 'nothing'}${added.length > 0 ? ` (new: ${added.join(', ')})` : ''}; installed now: ${JSON.stringify(prepared.previousPackages)}`,
        );
        if (method === 'deb') {
          // The rollback reinstalls the installed versions' own files, where apt or an
          // earlier upgrade from the mirror left them; without all of them, it pins
          // versions from the host's sources.
          const found: string[] = [];
          for (const [pkg, version] of Object.entries(prepared.previousPackages)) {
            for (const dir of ['/var/cache/apt/archives', ...new Set(files.map((f) => path.dirname(f)))]) {
              const deb = await cachedDeb(dir, pkg, version);
              if (deb) {
                found.push(deb);
                break;
              }
            }
          }
          if (found.length === Object.keys(prepared.previousPackages).length) prepared.rollbackDebs = found;
          else log('the installed versions’ package files are not all on the host: a rollback pins their versions with apt');
        }
        break;
      }
      default: {
        const never: never = method;
        return never;
      }
    }
    await this.hooks(ctx, 'preflight', params, fromVersion);
    return prepared;
  }

  private async backup(ctx: RecipeContext, prepared: Prepared): Promise<void> {
    const log = this.stepLog(ctx, 'backup');
    await mkdir(prepared.backupDir, { recursive: true, mode: 0o700 });
    for (const file of ctx.config.components[this.def.component].configFiles) {
      const backup = path.join(prepared.backupDir, `config-${prepared.configBackups.length}-${path.basename(file)}`);
      try {
        await copyFile(file, backup);
        prepared.configBackups.push({ file, backup });
        log(`saved ${file}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        log(`${file} does not exist; nothing to save`);
      }
    }
    if (prepared.rollbackDebs) {
      const kept = [];
      for (const deb of prepared.rollbackDebs) {
        const copy = path.join(prepared.backupDir, path.basename(deb));
        await copyFile(deb, copy);
        kept.push(copy);
      }
      prepared.rollbackDebs = kept;
      log(`kept ${kept.length} package file(s) of the installed versions for a rollback with dpkg`);
    }
    prepared.workloads = await this.def.recordWorkloads(ctx.config, prepared.backupDir, log);
    await writeFile(
      path.join(prepared.backupDir, 'upgrade.json'),
      JSON.stringify(
        {
          taskKey: ctx.taskKey,
          component: this.def.component,
          from: prepared.fromVersion,
          to: prepared.toVersion,
          at: new Date().toISOString(),
        },
        null,
        1,
      ),
    );
    await this.pruneBackups(ctx, prepared.backupDir);
  }

  private async pruneBackups(ctx: RecipeContext, keepDir: string): Promise<void> {
    const root = path.join(ctx.config.dataDir, 'backups');
    const dirs = [];
    for (const name of await readdir(root).catch(() => [] as string[])) {
      const p = path.join(root, name);
      dirs.push({ p, t: (await stat(p)).mtimeMs });
    }
    dirs.sort((a, b) => b.t - a.t);
    for (const d of dirs.slice(ctx.config.keepBackups)) if (d.p !== keepDir) await rm(d.p, { recursive: true, force: true });
  }

  private async install(ctx: RecipeContext, prepared: Prepared): Promise<void> {
    const log = this.stepLog(ctx, 'install');
    switch (prepared.method) {
      case 'binary': {
        const root = ctx.config.components[this.def.component].installRoot as string;
        const prev = await flipCurrent(root, prepared.toVersion);
        log(`${root}/current: ${prev ?? '(none)'} → versions/${prepared.toVersion}`);
        return;
      }
      case 'deb':
      case 'apt':
        await aptInstall(prepared.installTargets ?? [], log);
        return;
      default: {
        const never: never = prepared.method;
        return never;
      }
    }
  }

  private async startAndWait(ctx: RecipeContext, log: (l: string) => void): Promise<void> {
    const service = ctx.config.components[this.def.component].service;
    await controlService(service, 'start', ctx.config.timeouts.startSeconds * 1000, log);
    await this.def.waitReady(ctx.config, ctx.config.timeouts.startSeconds * 1000, ctx.signal);
  }

  private async stop(ctx: RecipeContext, log: (l: string) => void): Promise<void> {
    const service = ctx.config.components[this.def.component].service;
    await controlService(service, 'stop', ctx.config.timeouts.stopSeconds * 1000, log);
    await this.def.waitStopped(ctx.config, ctx.config.timeouts.stopSeconds * 1000, ctx.signal);
  }

  private async verify(ctx: RecipeContext, prepared: Prepared, params: UpgradeTaskParams): Promise<string> {
    const log = this.stepLog(ctx, 'verify');
    const now = await this.def.currentVersion(ctx.config);
    if (now === undefined || !sameRelease(now, params.toVersion)) {
      throw new Error(`${this.def.displayName} reports ${now ?? 'no version'} after the start, not ${params.toVersion}`);
    }
    log(`${this.def.displayName} reports ${now}`);
    await this.def.verifyWorkloads(ctx.config, prepared.workloads, ctx.config.timeouts.verifySeconds * 1000, ctx.signal, log);
    await this.hooks(ctx, 'afterStart', params, prepared.fromVersion);
    return now;
  }

  private async versionsNow(ctx: RecipeContext): Promise<ComponentVersions> {
    return (await new FactCollector(ctx.config, ctx.agentVersion, 0).collect()).versions;
  }

  async run(task: AgentTask, ctx: RecipeContext): Promise<TaskResultRequest> {
    const params = validateUpgradeParams(this.def.recipe, task.params);
    await ctx.journal.checkpoint('preflight');
    let prepared: Prepared;
    try {
      const p = await this.preflight(ctx, params);
      if ('alreadyCurrent' in p) {
        ctx.log(`${this.def.displayName} already runs ${p.alreadyCurrent}: nothing to install`);
        return { result: 'succeeded', versions: await this.versionsNow(ctx) };
      }
      prepared = p;
    } catch (e) {
      return this.failed('preflight', e, ctx, false);
    }
    try {
      await this.backup(ctx, prepared);
      await ctx.journal.checkpoint('prepared', { prepared });
    } catch (e) {
      return this.failed('backup', e, ctx, false);
    }
    try {
      await this.hooks(ctx, 'beforeStop', params, prepared.fromVersion);
    } catch (e) {
      return this.failed('stop', e, ctx, false);
    }
    let step = 'stop';
    try {
      await ctx.journal.checkpoint('stopping');
      await this.stop(ctx, this.stepLog(ctx, 'stop'));
      step = 'install';
      await ctx.journal.checkpoint('installing');
      await this.install(ctx, prepared);
      step = 'start';
      await ctx.journal.checkpoint('starting');
      await this.startAndWait(ctx, this.stepLog(ctx, 'start'));
      step = 'verify';
      await ctx.journal.checkpoint('verifying');
      await this.verify(ctx, prepared, params);
    } catch (e) {
      return this.rollback(ctx, prepared, step, (e as Error).message);
    }
    await this.finishBinary(ctx, prepared);
    ctx.log(`${this.def.displayName} ${prepared.fromVersion ?? '(none)'} → ${params.toVersion}: done`);
    return { result: 'succeeded', versions: await this.versionsNow(ctx) };
  }

  async resume(task: AgentTask, entry: JournalEntry, ctx: RecipeContext): Promise<TaskResultRequest> {
    const params = validateUpgradeParams(this.def.recipe, task.params);
    const prepared = entry.data['prepared'] as Prepared | undefined;
    const checkpoint = entry.step ?? 'preflight';
    const step = stepOfCheckpoint[checkpoint];
    if (step === undefined || prepared === undefined) {
      ctx.log(`the agent restarted during ${checkpoint}, before the service was stopped: nothing was changed`);
      return {
        result: 'failed',
        step: checkpoint === 'prepared' ? 'backup' : 'preflight',
        error: `the agent restarted during ${checkpoint}; nothing on the host was changed. Resume the upgrade to try again`,
        rolledBack: false,
      };
    }
    ctx.log(`the agent restarted during the ${step} step: checking the host`);
    try {
      await this.def.waitReady(ctx.config, Math.min(10_000, ctx.config.timeouts.startSeconds * 1000), ctx.signal);
      await this.verify(ctx, prepared, params);
      await this.finishBinary(ctx, prepared);
      ctx.log(`${this.def.displayName} runs ${params.toVersion} and verified: the interrupted upgrade had completed`);
      return { result: 'succeeded', versions: await this.versionsNow(ctx) };
    } catch (e) {
      return this.rollback(
        ctx,
        prepared,
        step,
        `the agent restarted during ${step}, and the host does not verify: ${(e as Error).message}`,
      );
    }
  }

  private async finishBinary(ctx: RecipeContext, prepared: Prepared): Promise<void> {
    if (prepared.method !== 'binary') return;
    const root = ctx.config.components[this.def.component].installRoot as string;
    const keep = [path.relative(root, versionDir(root, prepared.toVersion))];
    if (prepared.previousTarget) keep.push(prepared.previousTarget);
    await pruneVersions(root, keep, this.stepLog(ctx, 'cleanup')).catch((e: Error) => ctx.log(`[cleanup] ${e.message}`));
  }

  private failed(step: string, e: unknown, ctx: RecipeContext, rolledBack: boolean): TaskResultRequest {
    const message = e instanceof StepError ? e.message : (e as Error).message;
    ctx.log(`[${step}] failed: ${message}`);
    return { result: 'failed', step: e instanceof StepError ? e.step : step, error: message, rolledBack };
  }

  /** Puts the previous version back and proves it runs; the result says what failed and whether the rollback worked. */
  private async rollback(ctx: RecipeContext, prepared: Prepared, step: string, cause: string): Promise<TaskResultRequest> {
    ctx.log(`[${step}] failed: ${cause}`);
    const log = this.stepLog(ctx, 'rollback');
    if (prepared.fromVersion === undefined) {
      return {
        result: 'failed',
        step,
        error: `${cause}\nno rollback: ${this.def.displayName} was not installed before`,
        rolledBack: false,
      };
    }
    log(`rolling back to ${this.def.displayName} ${prepared.fromVersion}`);
    try {
      await this.stop(ctx, log).catch((e: Error) => log(`stop before the rollback: ${e.message} (continuing)`));
      switch (prepared.method) {
        case 'binary': {
          const root = ctx.config.components[this.def.component].installRoot as string;
          if (prepared.previousTarget === undefined) throw new Error(`${root}/current had no previous target`);
          await flipCurrentTo(root, prepared.previousTarget);
          log(`${root}/current → ${prepared.previousTarget}`);
          break;
        }
        case 'deb':
        case 'apt': {
          // One apt transaction puts the previous versions back and removes (`PKG-`) what
          // the install added, so apt resolves both together (tini-static breaks the old tini).
          const removals = (prepared.addedPackages ?? []).map((p) => `${p}-`);
          const previous =
            prepared.method === 'deb' && prepared.rollbackDebs && prepared.rollbackDebs.length > 0
              ? prepared.rollbackDebs
              : Object.entries(prepared.previousPackages ?? {}).map(([p, v]) => `${p}=${v}`);
          if (previous.length + removals.length > 0) await aptInstall([...previous, ...removals], log);
          await dpkgPurge(prepared.purgeOnRollback ?? [], log);
          if (removals.length > 0) log(`removed what the upgrade had added: ${(prepared.addedPackages ?? []).join(', ')}`);
          break;
        }
        default: {
          const never: never = prepared.method;
          return never;
        }
      }
      for (const { file, backup } of prepared.configBackups) {
        const [a, b] = await Promise.all([readFile(file).catch(() => undefined), readFile(backup)]);
        if (a === undefined || !a.equals(b)) {
          await copyFile(backup, file);
          log(`restored ${file}`);
        }
      }
      await this.startAndWait(ctx, log);
      const now = await this.def.currentVersion(ctx.config);
      if (now === undefined || !sameRelease(now, prepared.fromVersion))
        throw new Error(`after the rollback ${this.def.displayName} reports ${now ?? 'no version'}`);
      await this.def
        .verifyWorkloads(ctx.config, prepared.workloads, ctx.config.timeouts.verifySeconds * 1000, ctx.signal, log)
        .catch((e: Error) => log(e.message));
      log(`${this.def.displayName} ${now} runs again`);
      return { result: 'failed', step, error: cause, rolledBack: true, versions: await this.versionsNow(ctx) };
    } catch (e) {
      const message = `${cause}\nthe rollback to ${prepared.fromVersion} failed too: ${(e as Error).message}`;
      log(`failed: ${(e as Error).message}`);
      return { result: 'failed', step, error: message, rolledBack: false, versions: await this.versionsNow(ctx).catch(() => ({})) };
    }
  }
}
