export { SimulatedDriver } from './simulated-driver.js';
