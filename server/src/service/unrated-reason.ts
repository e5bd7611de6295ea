// Why an event could not be rated: its customer or its feature does not exist (yet).
import { type Db, mapDriverErrors } from "../store/database.js";
import { selectExistingIds } from "../store/usage-store.js";

/** explainUnrated maps each event id to CUSTOMER_NOT_FOUND or FEATURE_NOT_FOUND. */
export async function explainUnrated(db: Db, events: { eventId: string; customerId: string; featureKey: string }[]): Promise<Map<string, string>> {
  const existing = await mapDriverErrors(() =>
    selectExistingIds(db, [...new Set(events.map((e) => e.customerId))], [...new Set(events.map((e) => e.featureKey))]),
  );
  return new Map(
    events.map((e) => [e.eventId, !existing.customerIds.has(e.customerId) ? "CUSTOMER_NOT_FOUND" : !existing.featureKeys.has(e.featureKey) ? "FEATURE_NOT_FOUND" : "UNRATED"]),
  );
}
