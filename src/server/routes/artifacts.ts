import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Readable } from 'node:stream';
import { ArtifactList, FileParam, NoContent, UploadParams, UploadQuery, UploadedArtifactView, errorResponses } from '../../api/index.js';
import type { ArtifactMirror } from '../artifact-mirror.js';
import type { Catalog } from '../../domain/catalog.js';
import { findCatalogVersion } from '../../domain/catalog.js';
import { components, isComponent } from '../../domain/components.js';
import { ErrorCode, UpshiftError, invalid } from '../../domain/errors.js';
import { EventType } from '../../domain/events.js';
import { isValidVersion } from '../../domain/versions.js';
import type { Store } from '../../store/store.js';

/** The artifact mirror: files the server stores and serves to agents, so nodes need no internet access. */
export const artifactRoutes: FastifyPluginAsyncTypebox<{ store: Store; catalog: Catalog; mirror: ArtifactMirror }> = async (
  app,
  { store, catalog, mirror },
) => {
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  app.put(
    '/artifacts/:component/:version/:file',
    {
      config: { access: 'admin' },
      bodyLimit: 4 * 1024 * 1024 * 1024,
      schema: {
        tags: ['artifacts'],
        summary: 'Upload a file to the mirror (body: the bytes, application/octet-stream)',
        params: UploadParams,
        querystring: UploadQuery,
        response: { 201: UploadedArtifactView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { component, version, file } = request.params;
      if (!isComponent(component) || component === 'agent')
        throw invalid(`component must be one of ${components.filter((c) => c !== 'agent').join(', ')}`);
      if (!isValidVersion(version)) throw invalid('version must be a version such as 26.1.5');
      if (!findCatalogVersion(catalog, component, version)) {
        throw invalid(`${component} ${version} is not in the catalog: list it in the catalog file (--catalog) first`);
      }
      const method = request.query.method ?? (file.endsWith('.deb') ? 'deb' : 'binary');
      if (!request.body || typeof (request.body as Readable).pipe !== 'function') {
        throw new UpshiftError(ErrorCode.BAD_REQUEST, 'send the file as the request body with content-type application/octet-stream');
      }
      const { sha256, size } = await mirror.put({ file, component, version, method }, request.body as Readable, request.query.sha256);
      await store.events.append({
        type: EventType.artifactAdded,
        actor: request.principal?.name ?? 'unknown',
        clusterId: null,
        upgradeId: null,
        nodeId: null,
        message: `artifact ${file} (${component} ${version}, ${method}, ${size} bytes, sha256 ${sha256}) added to the mirror`,
      });
      return reply.code(201).send({ file, component, version, method, sha256, size });
    },
  );

  app.get(
    '/artifacts',
    {
      config: { access: 'viewer' },
      schema: { tags: ['artifacts'], summary: 'List the mirror', response: { 200: ArtifactList, ...errorResponses } },
    },
    async () => ({
      items: (await store.artifacts.list()).map((a) => ({
        file: a.file,
        component: a.component,
        version: a.version,
        method: a.method,
        sha256: a.sha256,
        size: a.size,
        createdAt: a.createdAt,
      })),
    }),
  );

  app.delete(
    '/artifacts/:file',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['artifacts'],
        summary: 'Remove a file from the mirror',
        params: FileParam,
        response: { 204: NoContent, ...errorResponses },
      },
    },
    async (request, reply) => {
      if (!(await mirror.remove(request.params.file)))
        throw new UpshiftError(ErrorCode.NOT_FOUND, `artifact ${request.params.file} is not in the mirror`);
      return reply.code(204).send();
    },
  );
};
