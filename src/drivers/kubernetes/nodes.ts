import type { V1Node } from '@kubernetes/client-node';
import type { Component, ComponentVersions, NodeRole } from '../../domain/components.js';
import type { InventoryNode } from '../../domain/ports.js';
import { isValidVersion } from '../../domain/versions.js';

/** Labels that mark a control-plane node (the second is the pre-1.24 name). */
const controlPlaneLabels = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'];

/**
 * What a Node reports, in Upshift's terms. `status.nodeInfo.containerRuntimeVersion`
 * is `<runtime>://<version>` (`containerd://1.6.20`, `docker://20.10.24`); the kubelet
 * fills it from the CRI `Version` call, so after an upgrade it is the runtime that
 * actually answers. The sandboxed runtime has no such field: its version is a node
 * label, set on the node by whatever installs it (the installer itself, or Node
 * Feature Discovery from a features file the installer writes).
 */
export function nodeVersions(node: V1Node, runtimeLabel: string): ComponentVersions {
  const versions: ComponentVersions = {};
  const reported = node.status?.nodeInfo?.containerRuntimeVersion ?? '';
  const match = /^([a-z-]+):\/\/v?(.+)$/.exec(reported);
  if (match) {
    const runtime = match[1];
    const version = match[2] ?? '';
    const component: Component | undefined = runtime === 'containerd' ? 'containerd' : runtime === 'docker' ? 'docker' : undefined;
    if (component && isValidVersion(version)) versions[component] = version;
  }
  const label = node.metadata?.labels?.[runtimeLabel];
  if (label !== undefined && isValidVersion(label)) versions['sandboxed-runtime'] = label;
  return versions;
}

export function nodeRole(node: V1Node): NodeRole {
  const labels = node.metadata?.labels ?? {};
  return controlPlaneLabels.some((l) => l in labels) ? 'manager' : 'worker';
}

export function nodeReady(node: V1Node): boolean {
  return (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/**
 * Control-plane nodes map to the `manager` role, so the batch planner upgrades them
 * first and never two in one batch, as it does for Swarm managers.
 */
export function toInventoryNode(node: V1Node, runtimeLabel: string): InventoryNode {
  return {
    name: node.metadata?.name ?? '',
    role: nodeRole(node),
    status: nodeReady(node) ? 'Ready' : 'NotReady',
    versions: nodeVersions(node, runtimeLabel),
  };
}
