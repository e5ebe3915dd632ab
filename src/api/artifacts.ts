import { type Static, Type } from '@sinclair/typebox';
import { artifactMethods } from '../domain/catalog.js';
import { ItemList, StringEnum, Timestamp, View } from './common.js';

/** The artifact mirror: files the server keeps and serves to agents, so that nodes need no internet access. */

const FileName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._+~-]{0,200}$' });

export const UploadParams = Type.Object({
  component: Type.String({ maxLength: 32 }),
  version: Type.String({ maxLength: 64 }),
  file: FileName,
});
export type UploadParams = Static<typeof UploadParams>;

export const UploadQuery = Type.Object({
  method: Type.Optional(StringEnum(artifactMethods)),
  sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$' })),
});
export type UploadQuery = Static<typeof UploadQuery>;

export const FileParam = Type.Object({ file: FileName });
export type FileParam = Static<typeof FileParam>;

const artifactProperties = {
  file: Type.String(),
  component: Type.String(),
  version: Type.String(),
  method: Type.String({ description: 'deb or binary' }),
  sha256: Type.String(),
  size: Type.Integer({ description: 'bytes' }),
};

/** The answer to an upload. */
export const UploadedArtifactView = View(artifactProperties, { description: 'The stored file' });
export type UploadedArtifactView = Static<typeof UploadedArtifactView>;

export const ArtifactView = View({ ...artifactProperties, createdAt: Timestamp() });
export type ArtifactView = Static<typeof ArtifactView>;

export const ArtifactList = ItemList(ArtifactView, 'The mirror’s files');
export type ArtifactList = Static<typeof ArtifactList>;
