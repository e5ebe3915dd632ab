import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { readFileSync } from 'node:fs';
import { ErrorCode } from '../../domain/errors.js';
import { sendError } from '../errors.js';

/** The agent bundle this server serves, read once at start. */
export interface AgentBundle {
  file: string;
  sha256: string;
}

/** The server's own address as a client reached it, refusing anything that is not a plain host[:port]. */
export function publicUrl(request: FastifyRequest): string | undefined {
  const host = request.headers.host ?? '';
  if (!/^[A-Za-z0-9.-]{1,253}(:\d{1,5})?$|^\[[0-9a-fA-F:]{2,45}\](:\d{1,5})?$/.test(host)) return undefined;
  return `${request.protocol}://${host}`;
}

function installScript(server: string): string {
  return `#!/bin/sh
# Installs the Upshift agent as a systemd service and joins this node to a cluster.
#   curl -fsSL ${server}/install/agent.sh | sh -s -- --join-token TOKEN [--name NAME] [--config FILE] [--ca-file CA.pem]
# Needs: root, curl, sha256sum, Node.js 20 or newer, systemd.
set -eu
SERVER='${server}'
TOKEN=""
NAME=""
CONFIG=""
CA_FILE=""
DATA_DIR=/var/lib/upshift-agent
PREFIX=/opt/upshift
while [ $# -gt 0 ]; do
  case "$1" in
    --join-token) TOKEN="$2"; shift 2 ;;
    --name) NAME="$2"; shift 2 ;;
    --data-dir) DATA_DIR="$2"; shift 2 ;;
    --config) CONFIG="$2"; shift 2 ;;
    --ca-file) CA_FILE="$2"; shift 2 ;;
    *) echo "agent.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$TOKEN" ] || { echo "usage: agent.sh --join-token TOKEN [--name NAME] [--data-dir DIR] [--config FILE] [--ca-file CA.pem]" >&2; exit 2; }
command -v node >/dev/null 2>&1 || { echo "agent.sh: the agent needs Node.js 20 or newer (apt-get install nodejs)" >&2; exit 1; }
mkdir -p "$PREFIX" "$DATA_DIR"
chmod 700 "$DATA_DIR"
set -- -fsSL
[ -n "$CA_FILE" ] && set -- -fsSL --cacert "$CA_FILE"
curl "$@" "$SERVER/install/upshift-agent.js" -o "$PREFIX/agent.js.new"
expected=$(curl "$@" "$SERVER/install/upshift-agent.js.sha256")
actual=$(sha256sum "$PREFIX/agent.js.new" | cut -d' ' -f1)
[ "$expected" = "$actual" ] || { rm -f "$PREFIX/agent.js.new"; echo "agent.sh: checksum mismatch ($actual, expected $expected)" >&2; exit 1; }
mv "$PREFIX/agent.js.new" "$PREFIX/agent.js"
( umask 077; printf 'UPSHIFT_JOIN_TOKEN=%s\\n' "$TOKEN" > "$DATA_DIR/join.env"
  [ -n "$CONFIG" ] && printf 'UPSHIFT_AGENT_CONFIG=%s\\n' "$CONFIG" >> "$DATA_DIR/join.env"
  # A private CA that signed the server's certificate: the agent verifies the server with it.
  [ -n "$CA_FILE" ] && printf 'NODE_EXTRA_CA_CERTS=%s\\n' "$CA_FILE" >> "$DATA_DIR/join.env" || true )
NAME_ARG=""
[ -n "$NAME" ] && NAME_ARG="--name $NAME"
cat > /etc/systemd/system/upshift-agent.service <<UNIT
[Unit]
Description=Upshift node agent
After=network-online.target docker.service
Wants=network-online.target

[Service]
EnvironmentFile=$DATA_DIR/join.env
ExecStart=/usr/bin/env node $PREFIX/agent.js agent --server $SERVER --data-dir $DATA_DIR $NAME_ARG
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
UNIT
systemctl daemon-reload
systemctl enable --now upshift-agent
echo "upshift agent installed; it joins $SERVER and shows up in the cluster's nodes within seconds"
`;
}

/** Public install routes: the script and the agent bundle (code, no secrets). */
export const installRoutes: FastifyPluginAsync<{ bundle: () => AgentBundle | undefined }> = async (app, { bundle }) => {
  app.get('/install/agent.sh', { schema: { hide: true } }, async (request, reply) => {
    const server = publicUrl(request);
    if (!server) return sendError(reply, 400, ErrorCode.BAD_REQUEST, 'the Host header is not a plain host name and port');
    return reply.type('text/x-shellscript; charset=utf-8').send(installScript(server));
  });
  app.get('/install/upshift-agent.js', { schema: { hide: true } }, async (_request, reply) => {
    const b = bundle();
    if (!b) return sendError(reply, 404, ErrorCode.NOT_FOUND, 'the agent bundle is not built: run npm run build on the server');
    return reply.type('application/javascript; charset=utf-8').header('x-upshift-sha256', b.sha256).send(readFileSync(b.file));
  });
  app.get('/install/upshift-agent.js.sha256', { schema: { hide: true } }, async (_request, reply) => {
    const b = bundle();
    if (!b) return sendError(reply, 404, ErrorCode.NOT_FOUND, 'the agent bundle is not built: run npm run build on the server');
    return reply.type('text/plain; charset=utf-8').send(`${b.sha256}\n`);
  });
};
