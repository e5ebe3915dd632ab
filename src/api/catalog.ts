import { type Static, Type } from '@sinclair/typebox';
import { components } from '../domain/components.js';
import { NullableString, View, keyed } from './common.js';

const Distributions = () =>
  Type.Optional(
    Type.Array(Type.String(), {
      description: 'the distributions it installs on, as agents report them (debian-13); absent: anywhere (binary archives, images)',
    }),
  );

/** The component catalog in use (`GET /catalog`): per component its versions, newest is `latest`. */
export const CatalogVersionView = View({
  version: Type.String(),
  notes: NullableString(),
  methods: Type.Array(Type.String(), { description: 'how it installs: apt, deb, binary, image, agent-bundle' }),
  distributions: Distributions(),
});
export type CatalogVersionView = Static<typeof CatalogVersionView>;

export const CatalogView = View(
  {
    components: View(keyed(components, View({ latest: NullableString(), versions: Type.Array(CatalogVersionView) }))),
  },
  { description: 'The catalog' },
);
export type CatalogView = Static<typeof CatalogView>;

/** A catalog version as one cluster sees it: whether it installs on the nodes an upgrade to it would touch. */
export const ClusterCatalogVersionView = View({
  ...CatalogVersionView.properties,
  installable: Type.Boolean({
    description: 'it installs on every node an upgrade to it would touch (nodes reporting no distribution do not restrict)',
  }),
  reason: NullableString({ description: 'why it is not installable: "Debian 12 packages; nodes a, b run debian-13"; null when it is' }),
  blockedNodes: Type.Array(View({ name: Type.String(), distribution: Type.String() }), {
    description: 'the nodes it does not install on, with the distribution each reports',
  }),
});
export type ClusterCatalogVersionView = Static<typeof ClusterCatalogVersionView>;

/** `GET /clusters/{id}/catalog`: the catalog as one cluster sees it, oldest version first. */
export const ClusterCatalogView = View(
  {
    components: View(
      keyed(
        components,
        View({
          latest: NullableString({ description: "the catalog's newest version" }),
          default: NullableString({ description: 'the default target of an upgrade: the newest version that installs on the nodes' }),
          versions: Type.Array(ClusterCatalogVersionView),
        }),
      ),
    ),
  },
  { description: 'The catalog as one cluster sees it' },
);
export type ClusterCatalogView = Static<typeof ClusterCatalogView>;
