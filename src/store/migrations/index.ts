export { LATEST_SCHEMA_VERSION, migrations, type Migration } from './list.js';
