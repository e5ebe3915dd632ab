export { HostsDriver } from './hosts-driver.js';
