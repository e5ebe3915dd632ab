import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { createReadStream, readFileSync } from 'node:fs';
import { AgentChecksum, AgentDownload, AgentExecutableDownload, InstallScript, errorResponses } from '../../api/index.js';
import { ErrorCode } from '../../domain/errors.js';
import type { AgentExecutable, AgentScript } from '../agent-files.js';
import { sendError } from '../errors.js';

/** The CPUs an agent executable may be built for (Node's names; the install script maps `uname -m` to them). */
export const agentArches = ['x64', 'arm64'] as const;

/** Why there is no executable for `arch`: not built at all, or built for another CPU only. */
export function missingExecutable(arch: string, built: AgentExecutable | undefined): string {
  return built
    ? `this server has the agent executable for linux-${built.arch} only, not for linux-${arch} (docs/hosts.md says which CPUs are built)`
    : 'the agent executable is not built: run npm run build on the server';
}

/** The server's own address as a client reached it, refusing anything that is not a plain host[:port]. */
export function publicUrl(request: FastifyRequest): string | undefined {
  const host = request.headers.host ?? '';
  if (!/^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9a-fA-F:]{2,45}\](:\d{1,5})?$/.test(host)) return undefined;
  return `${request.protocol}://${host}`;
}

/**
 * The install script (POSIX sh). It installs the agent executable (`$PREFIX/upshift-agent`,
 * a Node.js single executable application for the host's CPU): the host needs no Node.js.
 * What it guarantees:
 * - the executable is checked against `--sha256`, the checksum the admin was shown with
 *   the join command, not only against one served by this same server (plain HTTP can
 *   be tampered with on the way), and it must run on this host (`--version`) before
 *   anything of a previous install is stopped or replaced;
 * - `--ca-file` pins an https server's CA for every download (curl `--cacert`, `=https`
 *   only) and for the agent (`--ca-file`: the agent trusts that CA only);
 * - the join token is never written to disk: the script runs one join itself
 *   (`upshift-agent --join-only`, the token in that process's environment), which stores the
 *   node credential, and the service then starts with the credential alone;
 * - every value that reaches the unit, the environment file or the run script is checked
 *   against a strict character set first, and every expansion is quoted;
 * - it starts the agent only through what the host really runs: systemd counts as running
 *   when `/run/systemd/system` exists (what sd_booted() checks), not when `systemctl` is
 *   installed — Debian's docker.io 28 pulls in the systemd package on hosts and containers
 *   where systemd is not PID 1. Without it the script says so and does what the operator
 *   chose: `--foreground` (exec the agent), `--supervisor` (print its command line for
 *   runit, s6, supervisord or tini, start nothing) or `--systemd` (a unit for the next
 *   boot, for an image being built); without a choice it starts nothing and offers them.
 * `$`-expansions below are escaped for the template literal; `${server}` is the only
 * value the server fills in, and `publicUrl` allows only a plain host and port in it.
 */
function installScript(server: string): string {
  return `#!/bin/sh
# Installs the Upshift agent and joins this node to a cluster.
#   curl -fsSL ${server}/install/agent.sh | sudo sh -s -- --join-token TOKEN --sha256 HEX
#        [--foreground | --supervisor | --systemd]
#        [--name NAME] [--config FILE] [--ca-file CA.pem] [--data-dir DIR] [--prefix DIR] [--unit-dir DIR]
# Needs: root, curl, sha256sum. Not Node.js: the agent is one executable
# ($PREFIX/upshift-agent, default /opt/upshift/upshift-agent) with its runtime inside.
#
# --sha256 is the checksum printed beside the join command (upshift cluster create, upshift
# cluster join-token): the downloaded agent must match it. The join token is used by one
# join this script runs and is never written to disk; the agent then starts with the node
# credential that join stored in the data dir.
#
# How the agent is started:
#   systemd runs here (/run/systemd/system exists): the upshift-agent.service unit is
#                  installed, enabled and (re)started. The default.
#   --foreground   no service: after the join the script execs the agent, which runs
#                  until it is stopped (SIGTERM, Ctrl-C); your shell or the container's
#                  entrypoint keeps it. Exit status 2 is a refusal a restart cannot cure.
#   --supervisor   no service, nothing started: prints the agent's command line (also
#                  the run script $PREFIX/upshift-agent-run) and how to put it under
#                  runit, s6, supervisord or tini; exits 0.
#   --systemd      the unit even where systemd does not run now (an image being built):
#                  enabled, it starts at the next boot.
# Without systemd and without one of these, the agent is installed and joined but not
# started, and the script says how to start it.
set -eu
LC_ALL=C
export LC_ALL
umask 077
SERVER='${server}'
TOKEN=''
NAME=''
CONFIG=''
CA_FILE=''
SHA256=''
MODE=''
DATA_DIR=/var/lib/upshift-agent
PREFIX=/opt/upshift
UNIT_DIR=/etc/systemd/system

usage() {
  echo 'usage: agent.sh --join-token TOKEN [--sha256 HEX] [--foreground | --supervisor | --systemd] [--name NAME] [--config FILE] [--ca-file CA.pem] [--data-dir DIR] [--prefix DIR] [--unit-dir DIR]' >&2
  exit 2
}
bad() {
  printf 'agent.sh: %s\\n' "$*" >&2
  exit 2
}
fail() {
  printf 'agent.sh: %s\\n' "$*" >&2
  exit 1
}
# An absolute path of plain characters: it goes into the unit file, the environment file
# and the run script.
check_path() {
  case "$2" in
    /*) ;;
    *) bad "$1 must be an absolute path" ;;
  esac
  case "$2" in
    *[!A-Za-z0-9._/+-]*) bad "$1 may contain only letters, digits and . _ / + -" ;;
  esac
}
choose() {
  [ -z "$MODE" ] || [ "$MODE" = "$1" ] || bad 'choose one of --foreground, --supervisor and --systemd'
  MODE="$1"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --join-token | --name | --data-dir | --config | --ca-file | --sha256 | --prefix | --unit-dir)
      [ $# -ge 2 ] || bad "$1 needs a value"
      ;;
  esac
  case "$1" in
    --join-token) TOKEN="$2"; shift 2 ;;
    --name) NAME="$2"; shift 2 ;;
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --ca-file) CA_FILE="$2"; shift 2 ;;
    --sha256) SHA256="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --unit-dir) UNIT_DIR="$2"; shift 2 ;;
    --foreground) choose foreground; shift ;;
    --supervisor) choose supervisor; shift ;;
    --systemd) choose systemd; shift ;;
    -h | --help) usage ;;
    *) printf 'agent.sh: unknown option %s\\n' "$1" >&2; usage ;;
  esac
done

[ -n "$TOKEN" ] || usage
case "$TOKEN" in
  *[!A-Za-z0-9_-]*) bad '--join-token must be the upj_... token the server printed' ;;
esac
if [ -n "$SHA256" ]; then
  SHA256=$(printf '%s' "$SHA256" | tr 'A-F' 'a-f')
  case "$SHA256" in
    *[!0-9a-f]*) bad '--sha256 must be 64 hexadecimal digits' ;;
  esac
  [ "\${#SHA256}" -eq 64 ] || bad '--sha256 must be 64 hexadecimal digits'
fi
if [ -n "$NAME" ]; then
  case "$NAME" in
    [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) bad '--name must be letters, digits, . _ or -, starting with a letter or digit' ;;
  esac
  [ "\${#NAME}" -le 63 ] || bad '--name must be at most 63 characters'
fi
check_path --data-dir "$DATA_DIR"
check_path --prefix "$PREFIX"
check_path --unit-dir "$UNIT_DIR"
if [ -n "$CONFIG" ]; then
  check_path --config "$CONFIG"
  [ -r "$CONFIG" ] || bad "--config $CONFIG cannot be read"
fi
CURL_TLS=''
if [ -n "$CA_FILE" ]; then
  check_path --ca-file "$CA_FILE"
  [ -r "$CA_FILE" ] || bad "--ca-file $CA_FILE cannot be read"
  case "$SERVER" in
    https://*) ;;
    *) bad "--ca-file pins the CA of an https server, and $SERVER is not one" ;;
  esac
  CURL_TLS=yes
fi
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64 | Linux/amd64) ARCH=x64 ;;
  Linux/aarch64 | Linux/arm64) ARCH=arm64 ;;
  *) fail "no agent executable for $(uname -s) $(uname -m): the agent runs on Linux x86_64 (and aarch64 where the server has that build)" ;;
esac
command -v curl >/dev/null 2>&1 || fail 'curl is needed'
command -v sha256sum >/dev/null 2>&1 || fail 'sha256sum is needed (coreutils)'
# systemd runs when it made /run/systemd/system (sd_booted()); an installed systemctl alone
# says nothing: containers and chroots often have one without systemd being PID 1.
SYSTEMD_RUNS=''
if [ -d /run/systemd/system ]; then SYSTEMD_RUNS=yes; fi
if [ -z "$MODE" ] && [ -n "$SYSTEMD_RUNS" ]; then MODE=systemd; fi
if [ "$MODE" = systemd ]; then
  command -v systemctl >/dev/null 2>&1 || fail 'systemctl is needed to install the systemd unit'
fi

# Every download: fail on HTTP errors; with --ca-file, https only and that CA only.
fetch() {
  if [ -n "$CURL_TLS" ]; then
    curl -fsSL --proto '=https' --proto-redir '=https' --cacert "$CA_FILE" "$@"
  else
    curl -fsSL "$@"
  fi
}

# Directories the script creates on the way (/opt, …) keep the usual modes; the data dir is private.
( umask 022; mkdir -p "$PREFIX" "$DATA_DIR" )
chmod 700 "$DATA_DIR"
AGENT="$PREFIX/upshift-agent"
NEW="$AGENT.new"
rm -f "$NEW"
fetch -o "$NEW" "$SERVER/install/upshift-agent-linux-$ARCH" || { rm -f "$NEW"; fail "cannot download the agent (linux-$ARCH) from $SERVER"; }
actual=$(sha256sum "$NEW" | cut -d' ' -f1)
if [ -n "$SHA256" ]; then
  if [ "$actual" != "$SHA256" ]; then
    rm -f "$NEW"
    fail "checksum mismatch: the agent from $SERVER has sha256 $actual, but --sha256 is $SHA256; nothing was installed. If the server was upgraded since the join command was printed, ask an admin for a new one (upshift cluster join-token CLUSTER)"
  fi
else
  echo 'agent.sh: warning: no --sha256 given; the agent is checked only against the checksum the same server serves' >&2
  expected=$(fetch "$SERVER/install/upshift-agent-linux-$ARCH.sha256") || { rm -f "$NEW"; fail "cannot download the agent's checksum from $SERVER"; }
  if [ "$actual" != "$expected" ]; then
    rm -f "$NEW"
    fail "checksum mismatch: the agent has sha256 $actual, the server says $expected; nothing was installed"
  fi
fi
chmod 755 "$NEW"
# It must start on this host (CPU, C library) before anything of a previous install changes.
if ! version=$("$NEW" --version 2>&1); then
  rm -f "$NEW"
  fail "the downloaded agent does not run on this host: $version; nothing was installed"
fi

# A previous install's agent holds the data dir; stop its service for the join. An agent
# that something else runs keeps its lock on the data dir, and the join below says so.
if [ -n "$SYSTEMD_RUNS" ] && command -v systemctl >/dev/null 2>&1; then
  systemctl stop upshift-agent >/dev/null 2>&1 || true
fi
mv "$NEW" "$AGENT"
# An older install kept the join token in join.env: it is not needed any more.
rm -f "$DATA_DIR/join.env"
# The agent of an install before the executable: a script nothing runs any more.
rm -f "$PREFIX/agent.js"

set -- --server "$SERVER" --data-dir "$DATA_DIR"
if [ -n "$NAME" ]; then set -- "$@" --name "$NAME"; fi
if [ -n "$CONFIG" ]; then set -- "$@" --config "$CONFIG"; fi
if [ -n "$CA_FILE" ]; then set -- "$@" --ca-file "$CA_FILE"; fi
# The one join: the token lives only in this process's environment.
if ! UPSHIFT_JOIN_TOKEN="$TOKEN" "$AGENT" agent "$@" --join-only; then
  fail 'the node did not join (the reason is above); the agent was not started'
fi
TOKEN=''
JOINED="upshift agent $version installed as $AGENT and joined $SERVER with a node credential; the join token was not stored on this host"

if [ "$MODE" = systemd ]; then
  ENV_FILE="$DATA_DIR/agent.env"
  : > "$ENV_FILE"
  if [ -n "$CONFIG" ]; then printf 'UPSHIFT_AGENT_CONFIG=%s\\n' "$CONFIG" >> "$ENV_FILE"; fi
  if [ -n "$CA_FILE" ]; then printf 'UPSHIFT_AGENT_CA_FILE=%s\\n' "$CA_FILE" >> "$ENV_FILE"; fi
  NAME_ARG=''
  if [ -n "$NAME" ]; then NAME_ARG=" --name $NAME"; fi
  mkdir -p "$UNIT_DIR"
  ( umask 022
  cat > "$UNIT_DIR/upshift-agent.service" <<UNIT
[Unit]
Description=Upshift node agent
After=network-online.target docker.service
Wants=network-online.target

[Service]
EnvironmentFile=-$ENV_FILE
ExecStart=$AGENT agent --server $SERVER --data-dir $DATA_DIR$NAME_ARG
Restart=always
RestartSec=5
# Exit status 2 is a refusal that a restart cannot cure (a revoked node credential, a bad
# config file): the reason is in journalctl -u upshift-agent.
RestartPreventExitStatus=2

[Install]
WantedBy=multi-user.target
UNIT
  )
  if [ -n "$SYSTEMD_RUNS" ]; then
    systemctl daemon-reload
    systemctl enable upshift-agent
    systemctl restart upshift-agent
    echo "upshift agent $version installed as $AGENT: joined $SERVER and started with its node credential; the join token was not stored on this host"
  else
    # systemctl enables a unit without a running systemd (it only links files).
    systemctl enable upshift-agent
    echo "$JOINED"
    echo "systemd does not run here now (/run/systemd/system does not exist): $UNIT_DIR/upshift-agent.service is enabled and starts the agent at the next boot"
  fi
  exit 0
fi

# Without a service manager: one command line runs the agent in the foreground with its
# credential; every value in it was checked above, and no secret is in it.
CMD="$AGENT agent --server $SERVER --data-dir $DATA_DIR"
if [ -n "$NAME" ]; then CMD="$CMD --name $NAME"; fi
if [ -n "$CONFIG" ]; then CMD="$CMD --config $CONFIG"; fi
if [ -n "$CA_FILE" ]; then CMD="$CMD --ca-file $CA_FILE"; fi
RUN="$PREFIX/upshift-agent-run"
( umask 022
cat > "$RUN.new" <<RUNSCRIPT
#!/bin/sh
# Runs the Upshift agent in the foreground with this host's node credential (written by
# agent.sh). Logs go to stderr. Exit status 2 is a refusal that a restart cannot cure
# (a revoked credential, a bad config file): do not restart on it.
exec $CMD
RUNSCRIPT
chmod 755 "$RUN.new"
mv "$RUN.new" "$RUN"
)
NO_INIT='no init system runs here (/run/systemd/system does not exist)'
if [ -n "$SYSTEMD_RUNS" ]; then NO_INIT="--$MODE chosen: no systemd unit was installed"; fi

case "$MODE" in
  foreground)
    echo "$JOINED"
    echo "$NO_INIT: the agent runs in the foreground now (--foreground); stop it with SIGTERM or Ctrl-C. To start it again later: $RUN"
    # The agent replaces this shell: a supervisor or entrypoint that ran the script keeps it.
    umask 022
    exec "$AGENT" agent "$@"
    ;;
  supervisor)
    echo "$JOINED"
    echo "$NO_INIT: nothing was started (--supervisor). Run the agent under your supervisor with this command line; it stays in the foreground and logs to stderr:"
    echo "  $CMD"
    echo "It is also the run script $RUN. Exit status 2 is a refusal that a restart cannot cure: do not restart on it. For example:"
    echo "  runit:        mkdir -p /etc/service/upshift-agent && ln -s $RUN /etc/service/upshift-agent/run"
    echo "  s6:           mkdir -p /etc/s6/upshift-agent && ln -s $RUN /etc/s6/upshift-agent/run"
    echo "  supervisord:  [program:upshift-agent] command=$RUN autorestart=unexpected exitcodes=0,2"
    echo "  tini:         tini -- $RUN   (a container's ENTRYPOINT [\\"tini\\", \\"--\\", \\"$RUN\\"])"
    ;;
  *)
    echo "$JOINED"
    echo "$NO_INIT, so the agent was not started. Start it one of these ways:"
    echo "  in the foreground (your shell or the container's entrypoint keeps it): $RUN"
    echo "    or run this install command again with --foreground"
    echo "  under a supervisor (runit, s6, supervisord, tini, ...): give it the command line"
    echo "    $CMD"
    echo "    (the same as $RUN); run this install command again with --supervisor to see it for each"
    ;;
esac
`;
}

/**
 * Public install routes: the script, the agent executable (per CPU) and the agent as one
 * JavaScript file (for hosts that run it with their own Node.js), each with its sha256.
 * Code only, no secrets.
 */
export const installRoutes: FastifyPluginAsync<{
  bundle: () => AgentScript | undefined;
  executable: () => AgentExecutable | undefined;
}> = async (app, { bundle, executable }) => {
  app.get('/install/agent.sh', { schema: { hide: true, response: { 200: InstallScript, ...errorResponses } } }, async (request, reply) => {
    const server = publicUrl(request);
    if (!server) return sendError(reply, 400, ErrorCode.BAD_REQUEST, 'the Host header is not a plain host name and port');
    return reply.type('text/x-shellscript; charset=utf-8').send(installScript(server));
  });
  for (const arch of agentArches) {
    const current = () => {
      const e = executable();
      return e?.arch === arch ? e : undefined;
    };
    app.get(
      `/install/upshift-agent-linux-${arch}`,
      { schema: { hide: true, response: { 200: AgentExecutableDownload, ...errorResponses } } },
      async (_request, reply) => {
        const e = current();
        if (!e) return sendError(reply, 404, ErrorCode.NOT_FOUND, missingExecutable(arch, executable()));
        return reply
          .type('application/octet-stream')
          .header('content-length', e.size)
          .header('x-upshift-sha256', e.sha256)
          .send(createReadStream(e.file));
      },
    );
    app.get(
      `/install/upshift-agent-linux-${arch}.sha256`,
      { schema: { hide: true, response: { 200: AgentChecksum, ...errorResponses } } },
      async (_request, reply) => {
        const e = current();
        if (!e) return sendError(reply, 404, ErrorCode.NOT_FOUND, missingExecutable(arch, executable()));
        return reply.type('text/plain; charset=utf-8').send(`${e.sha256}\n`);
      },
    );
  }
  app.get(
    '/install/upshift-agent.js',
    { schema: { hide: true, response: { 200: AgentDownload, ...errorResponses } } },
    async (_request, reply) => {
      const b = bundle();
      if (!b) return sendError(reply, 404, ErrorCode.NOT_FOUND, 'the agent bundle is not built: run npm run build on the server');
      return reply.type('application/javascript; charset=utf-8').header('x-upshift-sha256', b.sha256).send(readFileSync(b.file));
    },
  );
  app.get(
    '/install/upshift-agent.js.sha256',
    { schema: { hide: true, response: { 200: AgentChecksum, ...errorResponses } } },
    async (_request, reply) => {
      const b = bundle();
      if (!b) return sendError(reply, 404, ErrorCode.NOT_FOUND, 'the agent bundle is not built: run npm run build on the server');
      return reply.type('text/plain; charset=utf-8').send(`${b.sha256}\n`);
    },
  );
};
