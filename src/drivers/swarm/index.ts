export { SwarmDriver, type SwarmDriverOptions } from './swarm-driver.js';
