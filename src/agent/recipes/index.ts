/** The recipes the agent ships, and what a recipe is given and returns. */
export { recipeBook } from './recipe-book.js';
export { containerd, dockerEngine, gvisorRunsc, type RuntimeDefinition } from './runtime-definitions.js';
export { RuntimeRecipe } from './runtime-recipe.js';
export { SelfUpgradeRecipe } from './self-upgrade.js';
export { SnapshotRecipe, snapshotProviderFor } from './snapshot.js';
export type { ArtifactSource, Recipe, RecipeContext, RecipeOutcome, TaskJournal } from './types.js';
export { ChecksumError, StepError, isHandedOver } from './types.js';
