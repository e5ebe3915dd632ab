import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
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
export const artifactRoutes: FastifyPluginAsyncTypebox<{ store: Store; catalog: Catalog; artifactDir: string }> = async (
  app,
  { store, catalog, artifactDir },
) => {
  app.addContentTypeParser('application/octet-stream', (_request, payload, done) => done(null, payload));

  app.put(
    '/artifacts/:component/:version/:file',
    {
      config: { role: 'admin' },
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
      mkdirSync(artifactDir, { recursive: true });
      const partial = join(artifactDir, `.${file}.partial`);
      const hash = createHash('sha256');
      let size = 0;
      try {
        await pipeline(
          request.body as Readable,
          async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              hash.update(chunk);
              size += chunk.length;
              yield chunk;
            }
          },
          createWriteStream(partial),
        );
      } catch (error) {
        rmSync(partial, { force: true });
        throw error;
      }
      const sha256 = hash.digest('hex');
      if (request.query.sha256 && request.query.sha256 !== sha256) {
        rmSync(partial, { force: true });
        throw invalid(`the upload's sha256 is ${sha256}, not the expected ${request.query.sha256}; nothing was stored`);
      }
      renameSync(partial, join(artifactDir, file));
      await store.upsertArtifact({ file, component, version, method, sha256, size });
      await store.appendEvent({
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

  app.get('/artifacts', { schema: { tags: ['artifacts'], summary: 'List the mirror' } }, async () => ({
    items: await store.listArtifacts(),
  }));

  app.delete(
    '/artifacts/:file',
    {
      config: { role: 'admin' },
      schema: {
        tags: ['artifacts'],
        summary: 'Remove a file from the mirror',
        params: Type.Object({ file: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._+~-]{0,200}$' }) }),
      },
    },
    async (request, reply) => {
      if (!(await store.deleteArtifact(request.params.file)))
        throw new UpshiftError(ErrorCode.NOT_FOUND, `artifact ${request.params.file} is not in the mirror`);
      rmSync(join(artifactDir, request.params.file), { force: true });
      return reply.code(204).send();
    },
  );
};
