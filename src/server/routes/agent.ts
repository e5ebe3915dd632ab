import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createReadStream } from 'node:fs';
import {
  AgentBundleFile,
  AgentBundleQuery,
  AgentFileParams,
  ArtifactFile,
  HeartbeatBody,
  HeartbeatResponse,
  JoinBody,
  JoinResponse,
  NoContent,
  TaskKeyParams,
  TaskLogBody,
  TaskPollQuery,
  TaskPollResponse,
  TaskResultBody,
  errorResponses,
} from '../../api/index.js';
import type { JoinRequest, TaskResultRequest } from '../../domain/agent-protocol.js';
import { ErrorCode, UpshiftError } from '../../domain/errors.js';
import type { NodeRecord } from '../../domain/model.js';
import type { AgentHub } from '../../engine/agents/index.js';
import type { Store } from '../../store/store.js';
import type { ArtifactMirror } from '../artifact-mirror.js';
import type { AgentExecutable } from '../agent-files.js';
import { missingExecutable } from './install.js';

declare module 'fastify' {
  interface FastifyRequest {
    agentNode?: NodeRecord;
  }
}

/**
 * The agent side of the API (see domain/agent-protocol.ts), under /api/v1/agent. Every
 * route but `join` authenticates the node's own credential; an agent sees and reports
 * only its own tasks.
 */
export const agentRoutes: FastifyPluginAsyncTypebox<{
  hub: AgentHub;
  store: Store;
  mirror: ArtifactMirror;
  executable: () => AgentExecutable | undefined;
}> = async (app, { hub, store, mirror, executable }) => {
  const nodeOf = (request: { agentNode?: NodeRecord }): NodeRecord => {
    if (!request.agentNode) throw new UpshiftError(ErrorCode.UNAUTHENTICATED, 'no node credential');
    return request.agentNode;
  };

  app.post(
    '/join',
    {
      config: { access: 'public' },
      schema: {
        tags: ['agent'],
        summary: 'Exchange a join token for a node credential',
        body: JoinBody,
        response: { 201: JoinResponse, ...errorResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await hub.join(request.body as JoinRequest, { address: request.ip })),
  );

  app.post(
    '/heartbeat',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['agent'],
        summary: 'Report facts and liveness',
        body: HeartbeatBody,
        response: { 200: HeartbeatResponse, ...errorResponses },
      },
    },
    async (request) => hub.heartbeat(nodeOf(request), request.body.facts),
  );

  app.get(
    '/tasks',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['agent'],
        summary: 'Long-poll the node’s open tasks',
        querystring: TaskPollQuery,
        response: { 200: TaskPollResponse, ...errorResponses },
      },
    },
    async (request) => {
      // Ends the wait when the agent goes away; a poll answered as usual aborts nothing.
      // The open poll keeps the node heard (engine/agents/liveness.ts): keep-alive probes
      // after 5 s of silence (1 s apart, 10 of them) close the connection of a host that
      // vanished without a word, within about 15 s.
      request.raw.socket?.setKeepAlive(true, 5000);
      const abort = new AbortController();
      const gone = () => abort.abort();
      request.raw.once('close', gone);
      try {
        return { tasks: await hub.poll(nodeOf(request), Number(request.query.waitSeconds ?? 0), abort.signal) };
      } finally {
        request.raw.off('close', gone);
      }
    },
  );

  app.post(
    '/tasks/:taskKey/log',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['agent'],
        summary: 'Append lines to a task’s log',
        params: TaskKeyParams,
        body: TaskLogBody,
        response: { 204: NoContent, ...errorResponses },
      },
    },
    async (request, reply) => {
      await hub.appendLog(nodeOf(request), request.params.taskKey, request.body.lines);
      return reply.code(204).send();
    },
  );

  app.post(
    '/tasks/:taskKey/result',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['agent'],
        summary: 'Report a task’s result (idempotent)',
        params: TaskKeyParams,
        body: TaskResultBody,
        response: { 204: NoContent, ...errorResponses },
      },
    },
    async (request, reply) => {
      await hub.reportResult(nodeOf(request), request.params.taskKey, request.body as TaskResultRequest);
      return reply.code(204).send();
    },
  );

  app.get(
    '/bundle',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['agent'],
        summary: 'The current agent executable, for self-upgrades',
        querystring: AgentBundleQuery,
        response: { 200: AgentBundleFile, ...errorResponses },
      },
    },
    async (request, reply) => {
      const node = nodeOf(request);
      const { form, arch } = request.query;
      if (form !== 'executable') {
        // An agent from before the executable (node agent.js): the service that starts it
        // with node cannot start an executable swapped in for the script.
        const cluster = (await store.clusters.get(node.clusterId))?.name ?? 'CLUSTER';
        // Its task shows the first 300 characters of this answer: the instruction comes first.
        throw new UpshiftError(
          ErrorCode.AGENT_REINSTALL_NEEDED,
          `reinstall the agent of node ${node.name}: run the join command of \`upshift cluster join-token ${cluster}\` on the host with --name ${node.name} (it keeps the credential). This agent runs as agent.js under Node.js, which cannot upgrade itself to the agent executable`,
        );
      }
      const e = executable();
      if (!e || (arch !== undefined && arch !== e.arch)) throw new UpshiftError(ErrorCode.NOT_FOUND, missingExecutable(arch ?? 'x64', e));
      return reply
        .type('application/octet-stream')
        .header('content-length', e.size)
        .header('x-upshift-sha256', e.sha256)
        .send(createReadStream(e.file));
    },
  );

  app.get(
    '/artifacts/:file',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['agent'],
        summary: 'Download a mirrored artifact',
        params: AgentFileParams,
        response: { 200: ArtifactFile, ...errorResponses },
      },
    },
    async (request, reply) => {
      nodeOf(request);
      const blob = await mirror.open(request.params.file);
      if (!blob) throw new UpshiftError(ErrorCode.NOT_FOUND, `artifact ${request.params.file} is not in the mirror`);
      return reply.type('application/octet-stream').header('x-upshift-sha256', blob.sha256).send(blob.stream);
    },
  );
};
