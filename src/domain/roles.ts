/**
 * Who may do what. Three roles: `viewer` reads; `operator` also plans, starts, pauses,
 * resumes, cancels, continues and quits upgrades; `admin` also manages clusters, nodes,
 * tokens, join tokens and artifacts. Each role may do everything the roles before it may.
 */
export const roles = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof roles)[number];

const rank: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

export function roleAllows(have: Role, need: Role): boolean {
  return rank[have] >= rank[need];
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (roles as readonly string[]).includes(value);
}
