import { type Static, Type } from '@sinclair/typebox';
import { components } from '../domain/components.js';
import { NullableString, View, keyed } from './common.js';

/** The component catalog in use (`GET /catalog`): per component its versions, newest is `latest`. */
export const CatalogVersionView = View({
  version: Type.String(),
  notes: NullableString(),
  methods: Type.Array(Type.String(), { description: 'how it installs: apt, deb, binary, image, agent-bundle' }),
});
export type CatalogVersionView = Static<typeof CatalogVersionView>;

export const CatalogView = View(
  {
    components: View(keyed(components, View({ latest: NullableString(), versions: Type.Array(CatalogVersionView) }))),
  },
  { description: 'The catalog' },
);
export type CatalogView = Static<typeof CatalogView>;
