export { KubernetesDriver, type KubernetesDriverOptions } from './kubernetes-driver.js';
