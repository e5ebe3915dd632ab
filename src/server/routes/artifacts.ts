import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Readable } from 'node:stream';
import type { ArtifactMirror } from '../artifact-mirror.js';
import type { Catalog } from '../../domain/catalog.js';
import { findCatalogVersion } from '../../domain/catalog.js';
import { components, isComponent } from '../../domain/components.js';
import { ErrorCode, UpshiftError, invalid } from '../../domain/errors.js';
import { EventType } from '../../domain/events.js';
import { isValidVersion } from '../../domain/versions.js';
import type { Store } from '../../store/store.js';

const UploadParams = Type.Object({
  component: Type.String({ maxLength: 32 }),
  version: Type.String({ maxLength: 64 }),
  file: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._+~-]{0,200}$' }),
});

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
        querystring: Type.Object({
          method: Type.Optional(Type.String({ enum: ['deb', 'binary'] })),
          sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
        }),
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

  app.get('/artifacts', { config: { access: 'viewer' }, schema: { tags: ['artifacts'], summary: 'List the mirror' } }, async () => ({
    items: await store.artifacts.list(),
  }));

  app.delete(
    '/artifacts/:file',
    {
      config: { access: 'admin' },
      schema: {
        tags: ['artifacts'],
        summary: 'Remove a file from the mirror',
        params: Type.Object({ file: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._+~-]{0,200}$' }) }),
      },
    },
    async (request, reply) => {
      if (!(await mirror.remove(request.params.file)))
        throw new UpshiftError(ErrorCode.NOT_FOUND, `artifact ${request.params.file} is not in the mirror`);
      return reply.code(204).send();
    },
  );
};
