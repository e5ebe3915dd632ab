import { type Command, Argument } from 'commander';
import type { ClusterList, NodeTaskView, NodeView, UpgradeList } from '../../api/index.js';
import { runAction, runLocalAction } from '../command.js';
import { configFilePath, readConfig } from '../config-file.js';
import type { Cli } from '../context.js';
import { allItems } from '../paging.js';
import { resolveUpgradeId, upgradePath } from '../resolve.js';

/**
 * Shell completion, generated from the command tree itself so that it never lags
 * behind: subcommands, options (with their choices), and names fetched from the
 * server for arguments such as <cluster> or <upgrade> (through the hidden
 * `upshift __complete KIND`).
 */
interface OptionSpec {
  names: string[];
  takesValue: boolean;
  choices: string[];
  dynamic: DynamicKind | undefined;
  description: string;
}

interface CommandSpec {
  /** `cluster create`; aliases give more paths to the same spec. */
  paths: string[];
  description: string;
  subcommands: { name: string; description: string }[];
  options: OptionSpec[];
  args: { choices: string[]; dynamic: DynamicKind | undefined }[];
}

/** Names the completion asks the server (or the config file) for. */
const dynamicKinds = ['clusters', 'upgrades', 'contexts', 'nodes', 'upgrade-nodes', 'files'] as const;
type DynamicKind = (typeof dynamicKinds)[number];

function optionKind(long: string | undefined): DynamicKind | undefined {
  switch (long) {
    case '--cluster':
      return 'clusters';
    case '--upgrade':
      return 'upgrades';
    case '--context':
      return 'contexts';
    case '--file':
      return 'files';
    default:
      return undefined;
  }
}

function argumentKind(path: string, name: string): DynamicKind | undefined {
  if (name === 'cluster') return 'clusters';
  if (name === 'upgrade') return 'upgrades';
  if (path.startsWith('config ') && name === 'name') return 'contexts';
  if (path.startsWith('node ') && name === 'name' && !path.endsWith(' add')) return 'nodes';
  if (path.startsWith('upgrade ') && name === 'node') return 'upgrade-nodes';
  return undefined;
}

function collect(command: Command, path: string[], aliasPaths: string[][], specs: CommandSpec[]): void {
  const help = command.createHelp();
  const subcommands = help.visibleCommands(command);
  const joined = path.join(' ');
  specs.push({
    paths: [joined, ...aliasPaths.map((p) => p.join(' '))],
    description: command.description(),
    subcommands: subcommands.flatMap((c) => [c.name(), ...c.aliases()].map((name) => ({ name, description: c.description() }))),
    options: help.visibleOptions(command).map((o) => ({
      names: [o.short, o.long].filter((n): n is string => n !== undefined),
      takesValue: o.required || o.optional,
      choices: o.argChoices ?? [],
      dynamic: optionKind(o.long),
      description: o.description,
    })),
    args: command.registeredArguments.map((a) => ({ choices: a.argChoices ?? [], dynamic: argumentKind(joined, a.name()) })),
  });
  for (const sub of command.commands) {
    if (!subcommands.includes(sub) || sub.name() === 'help') continue;
    collect(
      sub,
      [...path, sub.name()],
      [
        ...aliasPaths.map((p) => [...p, sub.name()]),
        ...sub.aliases().flatMap((alias) => [[...path, alias], ...aliasPaths.map((p) => [...p, alias])]),
      ],
      specs,
    );
  }
}

export function commandSpecs(program: Command): CommandSpec[] {
  const specs: CommandSpec[] = [];
  collect(program, [], [], specs);
  return specs;
}

/** A single-quoted shell word. */
const q = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

function casePattern(spec: CommandSpec): string {
  return spec.paths.map(q).join('|');
}

/** `case "$1" in 'cluster create') echo …;; esac` over every command. */
function caseFunction(name: string, specs: CommandSpec[], body: (spec: CommandSpec) => string | undefined): string {
  const arms = specs.flatMap((spec) => {
    const value = body(spec);
    return value === undefined || value === '' ? [] : [`    ${casePattern(spec)}) ${value} ;;`];
  });
  return `${name}() {\n  case "$1" in\n${arms.join('\n')}\n  esac\n}\n`;
}

/** Functions both shells share: the same `case` syntax works in bash and zsh. */
function sharedFunctions(prefix: string, specs: CommandSpec[], described: boolean): string {
  const lines = (items: string[]) => `printf '%s\\n' ${items.map(q).join(' ')}`;
  const entry = (name: string, description: string) => (described ? `${name.replace(/:/g, '\\:')}:${oneLine(description)}` : name);
  let out = '';
  out += caseFunction(`${prefix}_commands`, specs, (s) =>
    s.subcommands.length ? lines(s.subcommands.map((c) => entry(c.name, c.description))) : undefined,
  );
  out += caseFunction(`${prefix}_options`, specs, (s) => lines(s.options.flatMap((o) => o.names.map((n) => entry(n, o.description)))));
  out += caseFunction(`${prefix}_value_options`, specs, (s) => {
    const names = s.options.filter((o) => o.takesValue).flatMap((o) => o.names);
    return names.length ? `echo ${q(names.join(' '))}` : undefined;
  });
  // "$1" is "path|option" or "path|#index" for a positional argument.
  const valueArms: string[] = [];
  const kindArms: string[] = [];
  for (const spec of specs) {
    for (const option of spec.options) {
      for (const name of option.names) {
        const keys = spec.paths.map((p) => q(`${p}|${name}`)).join('|');
        if (option.choices.length) valueArms.push(`    ${keys}) echo ${q(option.choices.join(' '))} ;;`);
        if (option.dynamic) kindArms.push(`    ${keys}) echo ${option.dynamic} ;;`);
      }
    }
    spec.args.forEach((arg, index) => {
      const keys = spec.paths.map((p) => q(`${p}|#${index}`)).join('|');
      if (arg.choices.length) valueArms.push(`    ${keys}) echo ${q(arg.choices.join(' '))} ;;`);
      if (arg.dynamic) kindArms.push(`    ${keys}) echo ${arg.dynamic} ;;`);
    });
  }
  out += `${prefix}_choices() {\n  case "$1" in\n${valueArms.join('\n')}\n  esac\n}\n`;
  out += `${prefix}_kind() {\n  case "$1" in\n${kindArms.join('\n')}\n  esac\n}\n`;
  return out;
}

/**
 * Walks the words before the cursor: the command path, the positional arguments, the
 * global flags to pass on to `__complete`, and whether the cursor is on an option's value.
 * Written once for both shells: `$words`, `$first` and `$last` are set by the caller.
 */
function walker(prefix: string): string {
  return `  local cmd='' word flag='' expect_value=0
  local -a positional globals
  positional=()
  globals=()
  local i
  for ((i = first; i < last; i++)); do
    word=\${words[i]}
    if ((expect_value)); then
      expect_value=0
      case $flag in --server|--token|--context) globals+=("$flag" "$word") ;; esac
      continue
    fi
    case $word in
      --*=*) ;;
      -*)
        if [[ " $(${prefix}_value_options "$cmd") " == *" $word "* ]]; then expect_value=1; flag=$word; fi ;;
      *)
        if [[ \${#positional[@]} -eq 0 ]] && ${prefix}_commands "$cmd" | cut -d: -f1 | grep -qxF -- "$word"; then
          cmd=\${cmd:+$cmd }$word
        else
          positional+=("$word")
        fi ;;
    esac
  done
`;
}

export function bashCompletion(program: Command): string {
  const specs = commandSpecs(program);
  return `# bash completion for upshift, generated by \`upshift completion bash\`.
# This shell:   source <(upshift completion bash)
# Every shell:  upshift completion bash > ~/.local/share/bash-completion/completions/upshift

${sharedFunctions('_upshift', specs, false)}
_upshift_dynamic() {
  local kind=$1 bin=$2
  shift 2
  case $kind in
    files) compgen -f -- "$cur" ;;
    *) "$bin" "\${globals[@]}" __complete "$kind" "$@" 2>/dev/null ;;
  esac
}

_upshift() {
  local cur=\${COMP_WORDS[COMP_CWORD]}
  local -a words
  words=("\${COMP_WORDS[@]}")
  local first=1 last=$COMP_CWORD
${walker('_upshift')}  local key kind values
  COMPREPLY=()
  if ((expect_value)); then
    key="$cmd|$flag"
  elif [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$(_upshift_options "$cmd")" -- "$cur"))
    return 0
  elif [[ \${#positional[@]} -eq 0 && -n $(_upshift_commands "$cmd") ]]; then
    COMPREPLY=($(compgen -W "$(_upshift_commands "$cmd")" -- "$cur"))
    return 0
  else
    key="$cmd|#\${#positional[@]}"
  fi
  values=$(_upshift_choices "$key")
  kind=$(_upshift_kind "$key")
  if [[ -n $values ]]; then
    COMPREPLY=($(compgen -W "$values" -- "$cur"))
  elif [[ -n $kind ]]; then
    local IFS=$'\\n'
    COMPREPLY=($(compgen -W "$(_upshift_dynamic "$kind" "\${COMP_WORDS[0]}" "\${positional[@]}")" -- "$cur"))
  fi
  return 0
}

complete -F _upshift upshift
`;
}

export function zshCompletion(program: Command): string {
  const specs = commandSpecs(program);
  return `#compdef upshift
# zsh completion for upshift, generated by \`upshift completion zsh\`.
# This shell:   source <(upshift completion zsh)
# Every shell:  upshift completion zsh > "\${fpath[1]}/_upshift", then start a new shell

${sharedFunctions('_upshift', specs, true)}
_upshift() {
  local first=2 last=$CURRENT
${walker('_upshift')}  local key kind values cur=\${words[CURRENT]}
  local -a items
  if ((expect_value)); then
    key="$cmd|$flag"
  elif [[ $cur == -* ]]; then
    items=(\${(f)"$(_upshift_options "$cmd")"})
    _describe -t options 'option' items
    return
  elif [[ \${#positional[@]} -eq 0 && -n $(_upshift_commands "$cmd") ]]; then
    items=(\${(f)"$(_upshift_commands "$cmd")"})
    _describe -t commands 'command' items
    return
  else
    key="$cmd|#\${#positional[@]}"
  fi
  values=$(_upshift_choices "$key")
  kind=$(_upshift_kind "$key")
  if [[ -n $values ]]; then
    compadd -- \${=values}
  elif [[ $kind == files ]]; then
    _files
  elif [[ -n $kind ]]; then
    items=(\${(f)"$(\${words[1]} "\${globals[@]}" __complete "$kind" "\${positional[@]}" 2>/dev/null)"})
    compadd -- "\${items[@]}"
  fi
}

if [[ "\${funcstack[1]}" == _upshift ]]; then
  _upshift "$@"
else
  compdef _upshift upshift
fi
`;
}

/** What `__complete KIND [ARG]` prints: one name per line. */
async function names(cli: Cli, kind: DynamicKind, arg: string | undefined): Promise<string[]> {
  switch (kind) {
    case 'clusters':
      return (await cli.client.get<ClusterList>('/clusters')).items.map((c) => c.name);
    case 'upgrades': {
      const [upgrades, clusters] = await Promise.all([cli.client.get<UpgradeList>('/upgrades'), cli.client.get<ClusterList>('/clusters')]);
      return [...upgrades.items.map((u) => u.id), ...clusters.items.map((c) => c.name)];
    }
    case 'contexts':
      return Object.keys(readConfig(configFilePath()).contexts);
    case 'nodes':
      return arg === undefined
        ? []
        : (await allItems<NodeView>(cli.client, `/clusters/${encodeURIComponent(arg)}/nodes`)).map((n) => n.name);
    case 'upgrade-nodes': {
      if (arg === undefined) return [];
      const id = await resolveUpgradeId(cli.client, arg);
      return (await allItems<NodeTaskView>(cli.client, `${upgradePath(id)}/nodes`)).map((t) => t.nodeName);
    }
    case 'files':
      return [];
    default: {
      const never: never = kind;
      return never;
    }
  }
}

export function registerCompletionCommands(program: Command): void {
  const completion = program
    .command('completion')
    .description('print a shell completion script: `source <(upshift completion bash)`')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']));
  runLocalAction(completion, async ({ args }) => {
    process.stdout.write(args[0] === 'zsh' ? zshCompletion(program) : bashCompletion(program));
  });

  const helper = program
    .command('__complete', { hidden: true })
    .description('names for shell completion, one per line')
    .addArgument(new Argument('<kind>').choices(dynamicKinds))
    .addArgument(new Argument('[arg]'));
  runAction(helper, async ({ cli, args }) => {
    try {
      const list = await names(cli, args[0] as DynamicKind, args[1]);
      if (list.length) process.stdout.write(`${list.join('\n')}\n`);
    } catch {
      // Completion stays quiet: no server, no token, no such cluster, nothing to offer.
    }
  });
}
