// Reserve, run, commit what was used; release if the action throws.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import type { CallOptions } from "./call-path.js";
import type {
  CommitRequestSchema,
  CommitResponse,
  ReleaseRequestSchema,
  ReleaseResponse,
  Reservation,
  ReserveRequestSchema,
  ReserveResponse,
} from "./gen/burndown/v1/ledger_service_pb.js";

/** CreditsSpec says what to hold: a feature's usage at its burn rate, or an amount of a credit type. */
export type CreditsSpec = ({ customerId: string; featureKey: string; quantity: bigint } | { customerId: string; creditTypeId: string; amount: bigint }) & {
  /** how long the hold lasts if the process dies before committing; the server's default (5 minutes) when unset. */
  ttlMs?: number;
};

/** Hold is an open reservation handed to a withCredits action. */
export interface Hold {
  readonly reservation: Reservation;
  /** true when the ledger was unreachable and the feature fails open: no reservation, the use is recorded as offline usage. */
  readonly offline: boolean;
  /** use adds credits (of the reservation's credit type) to what will be committed; the first call replaces the default. */
  use: (credits: bigint) => void;
  /** setActual sets the credits to commit, less or more than held; more must fit the balance. */
  setActual: (credits: bigint) => void;
}

/** LedgerMutations are the client methods withCredits needs. */
export interface LedgerMutations {
  reserve: (request: MessageInitShape<typeof ReserveRequestSchema>, options?: CallOptions) => Promise<ReserveResponse>;
  commit: (request: MessageInitShape<typeof CommitRequestSchema>, options?: CallOptions) => Promise<CommitResponse>;
  release: (request: MessageInitShape<typeof ReleaseRequestSchema>, options?: CallOptions) => Promise<ReleaseResponse>;
}

function reserveRequestOf(spec: CreditsSpec): MessageInitShape<typeof ReserveRequestSchema> {
  const cost =
    "featureKey" in spec
      ? { case: "usage" as const, value: { featureKey: spec.featureKey, quantity: spec.quantity } }
      : { case: "credits" as const, value: { creditTypeId: spec.creditTypeId, amount: spec.amount } };
  return { customerId: spec.customerId, cost, ttl: spec.ttlMs === undefined ? undefined : durationFromMs(spec.ttlMs) };
}

function checkCredits(credits: bigint): void {
  if (typeof credits !== "bigint" || credits < 0n) throw new RangeError(`credits must be a bigint >= 0, got ${String(credits)}`);
}

// Methods rather than arrow properties: they need no `this`, so a caller may still destructure them.
function holdOf(reservation: Reservation): Hold & { actual: () => bigint } {
  let actual: bigint | null = null;
  return {
    reservation,
    offline: false,
    use(credits) {
      checkCredits(credits);
      actual = (actual ?? 0n) + credits;
    },
    setActual(credits) {
      checkCredits(credits);
      actual = credits;
    },
    actual() {
      return actual ?? reservation.amount;
    },
  };
}

/**
 * withCredits is the common case: hold the credits, run action, then commit what it used
 * (the whole hold unless it called hold.use or hold.setActual) and return its result; if
 * action throws, release the hold and rethrow. A refused hold throws before action runs
 * (InsufficientCreditsError when the customer lacks credits). A failed release is
 * reported to onError and the hold lapses at its TTL; the action's error is what throws.
 * A commit that fails after its retries throws its error: the action ran, but its credits
 * were not burned (RESERVATION_EXPIRED when it outlived ttlMs).
 */
export async function withCredits<T>(
  ledger: LedgerMutations,
  spec: CreditsSpec,
  action: (hold: Hold) => Promise<T>,
  onError: (error: unknown) => void,
  /** decides what happens when the hold itself failed (the failure policy); by default the failure throws. */
  whenHoldFails: (error: unknown) => Promise<T> = (error) => Promise.reject(error),
): Promise<T> {
  let reserved: Awaited<ReturnType<LedgerMutations["reserve"]>>;
  try {
    reserved = await ledger.reserve(reserveRequestOf(spec));
  } catch (error) {
    return whenHoldFails(error);
  }
  const { reservation } = reserved;
  if (reservation === undefined) throw new Error("assertion failed: Reserve answers with a reservation");
  const hold = holdOf(reservation);
  let result: T;
  try {
    result = await action(hold);
  } catch (error) {
    await ledger.release({ reservationId: reservation.reservationId }).then(undefined, onError);
    throw error;
  }
  await ledger.commit({ reservationId: reservation.reservationId, amount: hold.actual() });
  return result;
}
