import { createHash } from 'node:crypto';
import type { V1Namespace, V1Pod } from '@kubernetes/client-node';
import type { Catalog, CatalogArtifact } from '../../domain/catalog.js';
import { findCatalogVersion } from '../../domain/catalog.js';
import type { Component } from '../../domain/components.js';
import { componentDisplayName } from '../../domain/components.js';
import type { KubernetesClusterConfig } from './config.js';

/** Labels every executor pod carries; the selector of `failedPodsPresent` and of an operator's `kubectl get pods -l`. */
export const Labels = {
  managedBy: 'app.kubernetes.io/managed-by',
  name: 'app.kubernetes.io/name',
  component: 'app.kubernetes.io/component',
  upgradeId: 'upshift.io/upgrade-id',
  nodeId: 'upshift.io/node-id',
  taskKey: 'upshift.io/task-key',
  upshiftComponent: 'upshift.io/component',
} as const;

export const Annotations = {
  taskKey: 'upshift.io/task-key',
  nodeName: 'upshift.io/node-name',
  fromVersion: 'upshift.io/from-version',
  toVersion: 'upshift.io/to-version',
  attempt: 'upshift.io/attempt',
  /** On a Node: Upshift cordoned it and will uncordon it. */
  cordonedBy: 'upshift.io/cordoned-by',
} as const;

export const MANAGED_BY = 'upshift';
export const EXECUTOR_CONTAINER = 'executor';
export const HOST_ROOT = '/host';

const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function digest(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** A label value for `value`: itself when label-safe, else a hash of it. */
export function labelSafe(value: string): string {
  return value.length <= 63 && labelValue.test(value) ? value : `h-${digest(value, 40)}`;
}

/**
 * The executor pod's name, a pure function of the task key, so that a restarted
 * server finds the pod it created before instead of creating a second one. Engine keys
 * (`nt_<16 base32>.<attempt>`) map one-to-one onto a DNS label (`upshift-nt-…-1`);
 * anything else gets a hash suffix to stay unique.
 */
export function executorPodName(taskKey: string): string {
  const readable = taskKey
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  const canonical = /^[a-z]{2,4}_[0-9a-z]{1,40}\.\d{1,6}$/.test(taskKey);
  const base = `upshift-${readable}`;
  if (canonical && base.length <= 63) return base;
  return `${base.slice(0, 52).replace(/-+$/, '')}-${digest(taskKey, 10)}`;
}

/** The `image` artifact of the component's catalog entry for the target version. */
export function imageArtifact(catalog: Catalog, component: Component, version: string): (CatalogArtifact & { image: string }) | undefined {
  const entry = findCatalogVersion(catalog, component, version);
  const artifact = entry?.artifacts.find((a) => a.method === 'image' && typeof a.image === 'string');
  return artifact as (CatalogArtifact & { image: string }) | undefined;
}

export function missingImageMessage(component: Component, version: string): string {
  return (
    `the catalog has no image artifact for ${componentDisplayName[component]} ${version}: add one to the catalog file ` +
    `({"method":"image","image":"REGISTRY/INSTALLER:TAG","command":[…]}) and restart the server; see docs/kubernetes.md`
  );
}

export function namespaceManifest(name: string): V1Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      labels: {
        [Labels.managedBy]: MANAGED_BY,
        // Executor pods are privileged; Pod Security Admission must allow them here, and only here.
        'pod-security.kubernetes.io/enforce': 'privileged',
        'pod-security.kubernetes.io/warn': 'privileged',
      },
    },
  };
}

export interface ExecutorPodInput {
  config: KubernetesClusterConfig;
  taskKey: string;
  upgradeId: string;
  nodeId: string;
  nodeName: string;
  /** The Node's uid: the pod is owned by the Node, so deleting the Node garbage-collects it. */
  nodeUid?: string | undefined;
  component: Component;
  fromVersion: string | null;
  toVersion: string;
  attempt: number;
  artifact: CatalogArtifact & { image: string };
}

/**
 * The executor pod for one node task. What it needs, and nothing more:
 * - `nodeName` pins it to its node (no scheduler, no affinity to get wrong) and a
 *   toleration of every taint lets it run on a cordoned or tainted node;
 * - `privileged`, `hostPID` and the host's root at /host, because installing a container
 *   runtime means writing host files and restarting a host service (`nsenter -t 1`);
 * - no service account token (`automountServiceAccountToken: false`), no service links,
 *   no secrets: the installer gets its parameters as plain environment variables;
 * - `restartPolicy: Never` and `activeDeadlineSeconds`, so a failure stays a failure
 *   (left in place for troubleshooting) and a hung installer is stopped by the kubelet;
 * - requests and limits, so it is not BestEffort and cannot starve the node.
 */
export function executorPodManifest(input: ExecutorPodInput): V1Pod {
  const { config, artifact } = input;
  const env = [
    { name: 'UPSHIFT_COMPONENT', value: input.component },
    { name: 'UPSHIFT_FROM_VERSION', value: input.fromVersion ?? '' },
    { name: 'UPSHIFT_TO_VERSION', value: input.toVersion },
    { name: 'UPSHIFT_NODE_NAME', value: input.nodeName },
    { name: 'UPSHIFT_HOST_ROOT', value: HOST_ROOT },
    { name: 'UPSHIFT_RUNTIME_LABEL', value: config.runtimeLabel },
    { name: 'UPSHIFT_UPGRADE_ID', value: input.upgradeId },
    { name: 'UPSHIFT_TASK_KEY', value: input.taskKey },
  ];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: executorPodName(input.taskKey),
      namespace: config.namespace,
      labels: {
        [Labels.name]: 'upshift-executor',
        [Labels.component]: 'runtime-upgrade',
        [Labels.managedBy]: MANAGED_BY,
        [Labels.upgradeId]: labelSafe(input.upgradeId),
        [Labels.nodeId]: labelSafe(input.nodeId),
        [Labels.taskKey]: labelSafe(input.taskKey),
        [Labels.upshiftComponent]: input.component,
      },
      annotations: {
        [Annotations.taskKey]: input.taskKey,
        [Annotations.nodeName]: input.nodeName,
        [Annotations.fromVersion]: input.fromVersion ?? '',
        [Annotations.toVersion]: input.toVersion,
        [Annotations.attempt]: String(input.attempt),
      },
      ...(input.nodeUid
        ? {
            ownerReferences: [
              { apiVersion: 'v1', kind: 'Node', name: input.nodeName, uid: input.nodeUid, controller: false, blockOwnerDeletion: false },
            ],
          }
        : {}),
    },
    spec: {
      nodeName: input.nodeName,
      hostPID: true,
      restartPolicy: 'Never',
      activeDeadlineSeconds: config.taskTimeoutSeconds,
      terminationGracePeriodSeconds: 30,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      tolerations: [{ operator: 'Exists' }],
      ...(config.imagePullSecrets.length > 0 ? { imagePullSecrets: config.imagePullSecrets.map((name) => ({ name })) } : {}),
      containers: [
        {
          name: EXECUTOR_CONTAINER,
          image: artifact.image,
          imagePullPolicy: 'IfNotPresent',
          ...(artifact.command && artifact.command.length > 0 ? { command: [...artifact.command] } : {}),
          env,
          securityContext: { privileged: true },
          volumeMounts: [{ name: 'host-root', mountPath: HOST_ROOT }],
          resources: {
            requests: { cpu: '100m', memory: '128Mi' },
            limits: { cpu: '1', memory: '512Mi' },
          },
        },
      ],
      volumes: [{ name: 'host-root', hostPath: { path: '/', type: 'Directory' } }],
    },
  };
}
