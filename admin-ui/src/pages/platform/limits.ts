// The platform screens' bounds in one place, each with its unit in its name. The server
// enforces its own; these keep the browser's work and the forms inside them.

/** auditPageSize is how many audit records one page of the audit trail shows. */
export const auditPageSize = 50;

/** listPageSize is how many unrated events or usage conflicts one page shows. */
export const listPageSize = 50;

/** idsCountMax is the most customer ids a rollout, a move or a report may list (the server's bound). */
export const idsCountMax = 1_000;

/** reasonLengthMax is the longest reason the audit trail keeps (the server's bound). */
export const reasonLengthMax = 1_000;

/** offlineMinutesMax is the longest offline budget: 30 days (the server's bound). */
export const offlineMinutesMax = 30n * 24n * 60n;

/** replayLimitMax is the most unrated events one replay tries (the server's bound). */
export const replayLimitMax = 1_000;
