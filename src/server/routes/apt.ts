import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AptArchParams, AptKey, AptPoolFile, AptPoolParams, AptText, errorResponses } from '../../api/index.js';
import { ErrorCode, UpshiftError } from '../../domain/errors.js';
import { APT_COMPONENT, APT_SUITE } from '../apt-repository.js';
import type { ArtifactMirror } from '../artifact-mirror.js';

/**
 * The mirror as an apt repository, under /api/v1/agent/apt (server/apt-repository.ts says
 * why it is signed). Agent access: apt authenticates with the node's credential as the
 * password of HTTP basic authentication (the agent writes it to an apt auth.conf.d file),
 * so that only joined nodes read the mirror, as with /api/v1/agent/artifacts.
 */
export const aptRoutes: FastifyPluginAsyncTypebox<{ mirror: ArtifactMirror }> = async (app, { mirror }) => {
  const text = { 200: AptText, ...errorResponses };
  const dist = `/dists/${APT_SUITE}`;

  app.get(
    '/key.gpg',
    {
      config: { access: 'agent' },
      schema: { tags: ['agent'], summary: 'The apt repository’s signing key', response: { 200: AptKey, ...errorResponses } },
    },
    async (_request, reply) => reply.type('application/pgp-keys').send(mirror.apt.publicKey()),
  );

  for (const name of ['InRelease', 'Release', 'Release.gpg'] as const) {
    app.get(
      `${dist}/${name}`,
      { config: { access: 'agent' }, schema: { tags: ['agent'], summary: `The apt repository’s ${name}`, response: text } },
      async (_request, reply) => {
        const index = await mirror.aptIndex();
        const body = name === 'InRelease' ? index.inRelease : name === 'Release' ? index.release : index.releaseGpg;
        return reply.type('text/plain; charset=utf-8').send(body);
      },
    );
  }

  app.get(
    `${dist}/${APT_COMPONENT}/:arch/Packages`,
    {
      config: { access: 'agent' },
      schema: {
        tags: ['agent'],
        summary: 'The apt repository’s Packages index of one architecture',
        params: AptArchParams,
        response: text,
      },
    },
    async (request, reply) => {
      const arch = request.params.arch.replace(/^binary-/, '');
      const packages = (await mirror.aptIndex()).packages.get(arch);
      if (packages === undefined || !request.params.arch.startsWith('binary-'))
        throw new UpshiftError(ErrorCode.NOT_FOUND, `the mirror's apt repository has no packages for ${request.params.arch}`);
      return reply.type('text/plain; charset=utf-8').send(packages);
    },
  );

  app.get(
    '/pool/:file',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['agent'],
        summary: 'A package of the apt repository',
        params: AptPoolParams,
        response: { 200: AptPoolFile, ...errorResponses },
      },
    },
    async (request, reply) => {
      const blob = await mirror.openPool(request.params.file.replace(/\.deb$/, ''));
      if (!blob) throw new UpshiftError(ErrorCode.NOT_FOUND, `${request.params.file} is not in the mirror's apt repository`);
      return reply.type('application/vnd.debian.binary-package').header('content-length', String(blob.size)).send(blob.stream);
    },
  );
};
