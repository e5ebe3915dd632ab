import type { RecipeName } from '../../domain/agent-protocol.js';
import { RecipeName as Recipes } from '../../domain/agent-protocol.js';
import { containerd, dockerEngine, gvisorRunsc } from './runtime-definitions.js';
import { RuntimeRecipe } from './runtime-recipe.js';
import type { SelfUpgradeHost } from './self-upgrade.js';
import { SelfUpgradeRecipe } from './self-upgrade.js';
import { SnapshotRecipe } from './snapshot.js';
import type { Recipe } from './types.js';

/**
 * The recipes this agent ships, by the names of domain/agent-protocol.ts. The server can
 * only pick one of these; an unknown name is refused.
 */
export function recipeBook(selfUpgrade: SelfUpgradeHost): Record<RecipeName, Recipe> {
  return {
    [Recipes.dockerEngine]: new RuntimeRecipe(dockerEngine),
    [Recipes.containerd]: new RuntimeRecipe(containerd),
    [Recipes.gvisorRunsc]: new RuntimeRecipe(gvisorRunsc),
    [Recipes.agentSelfUpgrade]: new SelfUpgradeRecipe(selfUpgrade),
    [Recipes.snapshot]: new SnapshotRecipe(),
  };
}
